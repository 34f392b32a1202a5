using System.Text.Json.Serialization;

namespace Peft.Tuners;

/// <summary>Config fields shared by the methods that replace layers (LoRA, IA3, ...).</summary>
public abstract record TunerConfig : PeftConfig
{
    /// <summary>Which modules get an adapter; null means the architecture's default.</summary>
    [JsonPropertyName("target_modules")]
    public TargetModules? TargetModules { get; init; }

    /// <summary>Modules never targeted, even when <see cref="TargetModules"/> matches them.</summary>
    [JsonPropertyName("exclude_modules")]
    public TargetModules? ExcludeModules { get; init; }

    /// <summary>Modules trained in full and saved with the adapter (classification heads, ...).</summary>
    [JsonPropertyName("modules_to_save")]
    public IReadOnlyList<string>? ModulesToSave { get; init; }

    /// <summary>
    /// Only layers with these indices get an adapter; null means every layer. Methods whose reference
    /// config has <c>layers_to_transform</c> (LoRA) implement <see cref="ILayerSelection"/>; here it is
    /// read through that, so a config without the field (IA3) neither has it nor saves it.
    /// </summary>
    internal (IReadOnlyList<int>? Indices, string? Pattern) SelectedLayers =>
        this is ILayerSelection selection ? (selection.LayersToTransform, selection.LayersPattern) : (null, null);
}

/// <summary>
/// <c>layers_to_transform</c> and <c>layers_pattern</c>, for the configs whose reference has them
/// (LoRA and the methods derived from it); <see cref="TunerMethod{TConfig}"/> honours them.
/// </summary>
public interface ILayerSelection
{
    /// <summary>Only layers with these indices get an adapter.</summary>
    IReadOnlyList<int>? LayersToTransform { get; }

    /// <summary>The name of the layer list that <see cref="LayersToTransform"/> indexes (e.g. "h", "layers").</summary>
    string? LayersPattern { get; }

    /// <summary>The reference's checks of the two fields against target_modules (call from Validate).</summary>
    /// <param name="selection">The config.</param>
    /// <param name="targets">Its target_modules.</param>
    static void Check(ILayerSelection selection, TargetModules? targets)
    {
        if (selection.LayersToTransform is not null && targets?.Pattern is not null && !targets.IsAllLinear)
        {
            throw new PeftConfigException("`layers_to_transform` cannot be used when `target_modules` is a str.");
        }
        if (selection.LayersPattern is not null && selection.LayersToTransform is null)
        {
            throw new PeftConfigException("When `layers_pattern` is specified, `layers_to_transform` must also be specified.");
        }
    }
}
