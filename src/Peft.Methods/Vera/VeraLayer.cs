// VeRA for Linear and GPT-2 Conv1D layers, following peft/tuners/vera/layer.py (VeraLayer, Linear).
using Peft.Tuners;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Methods.Vera;

/// <summary>
/// Vector-based random matrix adaptation: <c>base(x) + λ_b ⊙ B(λ_d ⊙ A(dropout(x)))</c>, where A and B are
/// the adapter's shared frozen projections sliced to this layer (<c>vera_A[:, :in]</c>, <c>vera_B[:out, :]</c>)
/// and only the vectors train. Parameter names match the reference: <c>vera_lambda_b.&lt;adapter&gt;</c> (out),
/// <c>vera_lambda_d.&lt;adapter&gt;</c> (r).
/// </summary>
public sealed class VeraLayer : AdapterLayer, ISharedTensorsLayer
{
    private readonly ParameterDict vera_lambda_b = new();
    private readonly ParameterDict vera_lambda_d = new();
    private readonly AdapterModuleDict<nn.Module<Tensor, Tensor>> vera_dropout = new();
    private readonly SharedModules<VeraProjections> vera_projections = new();
    private readonly bool _fanInFanOut;

    /// <summary>Wraps <paramref name="baseLayer"/> (Linear or Conv1D).</summary>
    public VeraLayer(nn.Module<Tensor, Tensor> baseLayer) : base(nameof(VeraLayer), baseLayer)
    {
        // The weight's layout follows the layer's kind: the reference resets fan_in_fan_out to true for Conv1D, false for Linear.
        _fanInFanOut = Shape.Kind == SlotKind.Conv1D;
        RegisterComponents();
    }

    /// <inheritdoc />
    public override IReadOnlyCollection<string> AdapterNames => vera_projections.Names;

    /// <summary>The projections adapter <paramref name="adapterName"/> reads.</summary>
    public VeraProjections Projections(string adapterName) => vera_projections[adapterName];

    /// <summary>Adds adapter <paramref name="name"/> reading <paramref name="projections"/>.</summary>
    /// <exception cref="PeftConfigException">The projections are smaller than this layer.</exception>
    public void AddAdapter(string name, VeraProjections projections, VeraConfig config)
    {
        if (projections.A.shape[1] < Shape.InFeatures || projections.B.shape[0] < Shape.OutFeatures)
        {
            throw new PeftConfigException(
                $"VeRA adapter '{name}': the shared projections ({projections.B.shape[0]} × {projections.A.shape[1]}) are smaller than this layer ({Shape.OutFeatures} × {Shape.InFeatures}).");
        }
        var weight = BaseWeight;
        var lambdaB = torch.ones(Shape.OutFeatures, dtype: weight.dtype, device: weight.device);
        var lambdaD = torch.randn(projections.Rank, dtype: weight.dtype, device: weight.device);
        if (config.InitWeights)
        {
            lambdaD.fill_(config.DInitial);
            lambdaB.zero_();
        }
        vera_dropout.Add(name, config.VeraDropout > 0 ? nn.Dropout(config.VeraDropout) : nn.Identity());
        vera_lambda_b.Add((name, new Parameter(lambdaB)));
        vera_lambda_d.Add((name, new Parameter(lambdaD)));
        vera_projections.Add(name, projections);
    }

    /// <inheritdoc />
    public IEnumerable<SharedTensor> SharedTensors(string adapterName)
    {
        if (!vera_projections.TryGetValue(adapterName, out var projections)) yield break;
        yield return new SharedTensor("base_model.vera_A", projections.A, projections.Saved);
        yield return new SharedTensor("base_model.vera_B", projections.B, projections.Saved);
    }

    /// <summary>The projections sliced to this layer: A (r, in), B (out, r), in <paramref name="dtype"/>.</summary>
    private (Tensor A, Tensor B) Sliced(string adapterName, ScalarType dtype)
    {
        var projections = vera_projections[adapterName];
        var a = projections.A.narrow(1, 0, Shape.InFeatures);
        var b = projections.B.narrow(0, 0, Shape.OutFeatures);
        return (a.to(dtype), b.to(dtype));
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        var result = base_layer.call(input);
        if (BaseOnly) return result;
        using var scope = torch.NewDisposeScope();
        foreach (var name in ActiveAdapters)
        {
            if (MergedAdapters.Contains(name)) continue;
            var lambdaD = vera_lambda_d[name];
            var (a, b) = Sliced(name, lambdaD.dtype);
            var x = vera_dropout[name].call(input.to(lambdaD.dtype));
            result = result + vera_lambda_b[name] * nn.functional.linear(lambdaD * nn.functional.linear(x, a), b);
        }
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>(λ_b ⊙ B)(λ_d ⊙ A), in the base weight's layout.</summary>
    protected override Tensor Delta(string adapterName)
    {
        var lambdaD = vera_lambda_d[adapterName];
        var (a, b) = Sliced(adapterName, lambdaD.dtype);
        var delta = torch.matmul(vera_lambda_b[adapterName].unsqueeze(-1) * b, lambdaD.unsqueeze(-1) * a); // (out, in)
        return (_fanInFanOut ? delta.T : delta).to(BaseWeight.dtype);
    }

    /// <inheritdoc />
    public override void DeleteAdapter(string adapterName)
    {
        if (!vera_projections.Remove(adapterName)) return;
        vera_lambda_b.Remove(adapterName);
        vera_lambda_d.Remove(adapterName);
        vera_dropout.Remove(adapterName);
        ActiveAdapters = ActiveAdapters.Where(a => a != adapterName).ToArray();
    }
}

/// <summary>
/// Modules shared with other layers, keyed by adapter name and registered as children (so moving the layer
/// moves them); unlike <see cref="AdapterModuleDict{T}"/>, removing one does not dispose it, since other
/// layers still read it.
/// </summary>
internal sealed class SharedModules<T> : nn.Module where T : nn.Module
{
    private readonly Dictionary<string, T> _items = new(StringComparer.Ordinal);

    public SharedModules() : base(nameof(SharedModules<T>))
    {
    }

    public T this[string name] => _items[name];

    public IReadOnlyCollection<string> Names => _items.Keys;

    public void Add(string name, T module)
    {
        _items.Add(name, module);
        _internal_submodules.Add(name, module);
    }

    public bool TryGetValue(string name, out T module) => _items.TryGetValue(name, out module!);

    public bool Remove(string name)
    {
        if (!_items.Remove(name)) return false;
        _internal_submodules.Remove(name);
        return true;
    }
}
