// LoRA for Linear and GPT-2 Conv1D layers, following peft/tuners/lora/layer.py (class Linear).
using Peft.Tuners;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Methods.Lora;

/// <summary>
/// Adds <c>lora_B(lora_A(dropout(x))) · scaling</c> to a Linear or Conv1D layer's output.
/// Parameter names match the reference: <c>lora_A.&lt;adapter&gt;.weight</c>, <c>lora_B.&lt;adapter&gt;.weight</c>.
/// </summary>
public sealed class LoraLayer : AdapterLayer
{
    private readonly AdapterModuleDict<nn.Module<Tensor, Tensor>> lora_dropout = new();
    private readonly AdapterModuleDict<Linear> lora_A = new();
    private readonly AdapterModuleDict<Linear> lora_B = new();
    private readonly Dictionary<string, double> _scaling = [];
    private readonly bool _fanInFanOut;

    /// <summary>Wraps <paramref name="baseLayer"/> (Linear or Conv1D).</summary>
    public LoraLayer(nn.Module<Tensor, Tensor> baseLayer, bool fanInFanOut) : base("LoraLayer", baseLayer)
    {
        _fanInFanOut = fanInFanOut;
        RegisterComponents();
    }

    /// <inheritdoc />
    public override IReadOnlyCollection<string> AdapterNames => _scaling.Keys;

    /// <summary>Adds adapter <paramref name="name"/> of rank <paramref name="rank"/>.</summary>
    public void AddAdapter(string name, int rank, double scaling, double dropout, bool loraBias, LoraInit init)
    {
        var dtype = AdapterDType;
        var device = BaseWeight.device;
        var a = nn.Linear(Shape.InFeatures, rank, hasBias: false, device: device, dtype: dtype);
        var b = nn.Linear(rank, Shape.OutFeatures, hasBias: loraBias, device: device, dtype: dtype);
        using (torch.no_grad())
        {
            switch (init)
            {
                case LoraInit.Default:
                    nn.init.kaiming_uniform_(a.weight!, a: Math.Sqrt(5));
                    nn.init.zeros_(b.weight!);
                    break;
                case LoraInit.Gaussian:
                    nn.init.normal_(a.weight!, std: 1.0 / rank);
                    nn.init.zeros_(b.weight!);
                    break;
            }
            if (b.bias is not null) nn.init.zeros_(b.bias);
        }
        lora_dropout.Add(name, dropout > 0 ? nn.Dropout(dropout) : nn.Identity());
        lora_A.Add(name, a);
        lora_B.Add(name, b);
        _scaling[name] = scaling;
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        var result = base_layer.call(input);
        if (BaseOnly) return result;
        using var scope = torch.NewDisposeScope();
        var dtype = result.dtype;
        foreach (var name in ActiveAdapters)
        {
            if (MergedAdapters.Contains(name)) continue;
            var a = lora_A[name];
            var update = lora_B[name].call(a.call(lora_dropout[name].call(input.to(a.weight!.dtype))));
            result = result.add(update, alpha: _scaling[name]);
        }
        // The sum is in the adapter's (wider) dtype; hand the base layer's dtype on, as the reference does.
        return result.to(dtype).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    protected override Tensor Delta(string adapterName)
    {
        var delta = torch.matmul(lora_B[adapterName].weight!, lora_A[adapterName].weight!) * _scaling[adapterName]; // (out, in)
        return _fanInFanOut || Shape.Kind == SlotKind.Conv1D ? delta.T : delta;
    }

    /// <inheritdoc />
    public override void DeleteAdapter(string adapterName)
    {
        if (!_scaling.Remove(adapterName)) return;
        lora_dropout.Remove(adapterName);
        lora_A.Remove(adapterName);
        lora_B.Remove(adapterName);
        ActiveAdapters = ActiveAdapters.Where(a => a != adapterName).ToArray();
    }
}
