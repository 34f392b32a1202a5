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

    /// <summary>Only layers with these indices get an adapter.</summary>
    [JsonPropertyName("layers_to_transform")]
    public IReadOnlyList<int>? LayersToTransform { get; init; }

    /// <summary>The name of the layer list that <see cref="LayersToTransform"/> indexes (e.g. "h", "layers").</summary>
    [JsonPropertyName("layers_pattern")]
    public string? LayersPattern { get; init; }

    /// <inheritdoc />
    public override void Validate()
    {
        base.Validate();
        if (LayersToTransform is not null && TargetModules?.Pattern is not null && !TargetModules.IsAllLinear)
        {
            throw new PeftConfigException("`layers_to_transform` cannot be used when `target_modules` is a str.");
        }
        if (LayersPattern is not null && LayersToTransform is null)
        {
            throw new PeftConfigException("When `layers_pattern` is specified, `layers_to_transform` must also be specified.");
        }
    }
}
