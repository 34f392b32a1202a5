using Peft.Plugins;
using Peft.Tuners;
using static TorchSharp.torch;

namespace Peft.Methods.IA3;

/// <summary>
/// Infused Adapter by Inhibiting and Amplifying Inner Activations (Liu et al., 2022): learned
/// vectors that rescale activations. Linear and Conv1D layers get an <see cref="IA3Layer"/>.
/// </summary>
public sealed class IA3Method : TunerMethod<IA3Config, IA3Layer>
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
    protected override bool Wraps(LayerShape shape) => shape.Kind is SlotKind.Linear or SlotKind.Conv1D;

    /// <inheritdoc />
    protected override IA3Layer NewLayer(nn.Module<Tensor, Tensor> baseLayer, IA3Config config, string path) => new(baseLayer, config.IsFeedforward(path), config.FanInFanOut);

    /// <inheritdoc />
    protected override void AddAdapter(IA3Layer layer, IA3Config config, string adapterName, string path) =>
        layer.AddAdapter(adapterName, config.InitIA3Weights);
}
