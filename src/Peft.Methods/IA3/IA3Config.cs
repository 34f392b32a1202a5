using System.Text.Json.Serialization;
using Peft.Tuners;

namespace Peft.Methods.IA3;

/// <summary>IA3's adapter_config.json (the reference's <c>IA3Config</c>).</summary>
public sealed record IA3Config : TunerConfig
{
    /// <inheritdoc />
    public override PeftType PeftType => PeftType.IA3;

    /// <summary>
    /// The target modules whose vector scales the layer's input rather than its output; matched
    /// against full module names with the same rules as <see cref="TunerConfig.TargetModules"/>.
    /// </summary>
    [JsonPropertyName("feedforward_modules")]
    public TargetModules? FeedforwardModules { get; init; }

    /// <summary>True when the base layer stores its weight (in, out), as GPT-2's Conv1D does.</summary>
    [JsonPropertyName("fan_in_fan_out")]
    public bool FanInFanOut { get; init; }

    /// <summary>Start the vectors at ones (the adapter is the identity); false starts them random (for tests).</summary>
    [JsonPropertyName("init_ia3_weights")]
    public bool InitIA3Weights { get; init; } = true;

    /// <summary>The architectures' table of default feed-forward modules (the reference's TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING).</summary>
    public const string FeedforwardTable = "IA3_FEEDFORWARD";

    /// <summary>Whether the module at <paramref name="path"/> is a feed-forward module.</summary>
    public bool IsFeedforward(string path) => FeedforwardModules?.Matches(path) ?? false;

    /// <inheritdoc />
    public override void Validate()
    {
        base.Validate();
        if (TargetModules?.Names is { } targets && FeedforwardModules?.Names is { } feedforward)
        {
            var missing = feedforward.Where(f => !targets.Contains(f)).ToList();
            if (missing.Count > 0)
            {
                throw new PeftConfigException(
                    $"`feedforward_modules` should be a subset of `target_modules`; [{string.Join(", ", missing)}] of feedforward_modules {FeedforwardModules} are not in target_modules {TargetModules}.");
            }
        }
    }
}
