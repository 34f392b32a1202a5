using Peft.Plugins;
using Peft.Tuners;
using static TorchSharp.torch;

namespace Peft.Methods.Vera;

/// <summary>
/// VeRA (Kopiczko et al., 2024): one pair of frozen random projections for the whole adapter, sized by the
/// largest target, and two trainable vectors per layer. Linear and GPT-2 Conv1D layers get a <see cref="VeraLayer"/>.
/// </summary>
public sealed class VeraMethod : TunerMethod<VeraConfig, VeraLayer>
{
    /// <inheritdoc />
    public override PeftType PeftType => VeraConfig.Type;

    /// <inheritdoc />
    public override string ParameterPrefix => "vera_lambda_";

    /// <summary>Draws the adapter's projections, sized by the largest Linear/Conv1D target (the reference's <c>_find_dim</c>).</summary>
    protected override VeraConfig BeforeInjection(AdapterTarget target, VeraConfig config, string adapterName, IReadOnlyList<(string Path, LayerShape Shape)> targets)
    {
        var supported = targets.Where(t => t.Shape.Kind is SlotKind.Linear or SlotKind.Conv1D).ToList();
        if (supported.Count == 0)
        {
            throw new PeftConfigException("No layers types compatible with VeRA were found. Please check `target_modules`.");
        }
        // The reference keeps one seed and one save_projection for all of a model's VeRA adapters.
        var other = target.Model.modules().OfType<VeraLayer>()
            .SelectMany(l => l.AdapterNames.Select(l.Projections))
            .FirstOrDefault();
        if (other is not null && other.Seed != config.ProjectionPrngKey)
        {
            throw new PeftConfigException(
                $"Vera PRNG initialisation key must be the same for all adapters. Got projection_prng_key={config.ProjectionPrngKey} but the model's other VeRA adapter has {other.Seed}.");
        }
        if (other is not null && other.Saved != config.SaveProjection)
        {
            throw new PeftConfigException("VeRA projection weights must be saved for all adapters or none: `save_projection` differs from the model's other VeRA adapter.");
        }
        var projections = new VeraProjections(
            config.R, supported.Max(t => t.Shape.InFeatures), supported.Max(t => t.Shape.OutFeatures), config.ProjectionPrngKey, config.SaveProjection);
        return config with { Projections = projections };
    }

    /// <inheritdoc />
    protected override bool Wraps(LayerShape shape) => shape.Kind is SlotKind.Linear or SlotKind.Conv1D;

    /// <inheritdoc />
    protected override VeraLayer NewLayer(nn.Module<Tensor, Tensor> baseLayer, VeraConfig config, string path) => new(baseLayer);

    /// <inheritdoc />
    protected override void AddAdapter(VeraLayer layer, VeraConfig config, string adapterName, string path) =>
        layer.AddAdapter(adapterName, ProjectionsOf(config), config);

    private static VeraProjections ProjectionsOf(VeraConfig config) =>
        config.Projections ?? throw new InvalidOperationException("VeRA layers are made after BeforeInjection drew the projections.");
}
