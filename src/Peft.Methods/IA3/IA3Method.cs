using Peft.Plugins;
using Peft.Tuners;
using static TorchSharp.torch;

namespace Peft.Methods.IA3;

/// <summary>
/// Infused Adapter by Inhibiting and Amplifying Inner Activations (Liu et al., 2022): learned
/// vectors that rescale activations. Linear and Conv1D layers get an <see cref="IA3Layer"/>.
/// </summary>
public sealed class IA3Method : TunerMethod<IA3Config>
{
    /// <inheritdoc />
    public override PeftType PeftType => PeftType.IA3;

    /// <inheritdoc />
    public override string ParameterPrefix => "ia3_";

    /// <summary>
    /// Without <c>feedforward_modules</c>, the architecture's <c>"IA3_FEEDFORWARD"</c> table
    /// applies, as the reference fills it whether or not <c>target_modules</c> was given.
    /// </summary>
    protected override IA3Config PrepareConfig(IA3Config config, AdapterTarget target)
    {
        if (config.FeedforwardModules is not null) return config;
        if (!target.Architecture.DefaultTargets.TryGetValue(IA3Config.FeedforwardTable, out var feedforward))
        {
            throw new PeftConfigException(
                $"`feedforward_modules` is not set and the {target.Architecture.ModelType} architecture declares no default feed-forward modules for IA3; set it in the config.");
        }
        // Given target names, keep the defaults among them: the others would scale nothing, and the
        // reference's own check (feedforward ⊆ targets) would refuse the saved config.
        if (config.TargetModules?.Names is { } targets) feedforward = feedforward.Where(targets.Contains).ToList();
        return config with { FeedforwardModules = TargetModules.FromNames(feedforward) };
    }

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor>? CreateLayer(
        nn.Module<Tensor, Tensor> baseLayer, LayerShape shape, IA3Config config, string adapterName, string path)
    {
        if (shape.Kind is not (SlotKind.Linear or SlotKind.Conv1D)) return null;
        var layer = new IA3Layer(baseLayer, config.IsFeedforward(path), config.FanInFanOut);
        layer.AddAdapter(adapterName, config.InitIA3Weights);
        return layer;
    }

    /// <inheritdoc />
    protected override bool TryAddToLayer(nn.Module<Tensor, Tensor> existing, IA3Config config, string adapterName, string path)
    {
        if (existing is not IA3Layer layer) return false;
        layer.AddAdapter(adapterName, config.InitIA3Weights);
        return true;
    }
}
