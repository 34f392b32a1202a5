using System.Text.Json.Serialization;
using Peft.Modeling;
using Peft.PromptLearning;

namespace Peft.Methods.PTuning;

/// <summary>P-tuning's adapter_config.json (the reference's <c>PromptEncoderConfig</c>).</summary>
public sealed record PromptEncoderConfig : PromptLearningConfig
{
    /// <summary>A three-layer MLP over the virtual token embeddings.</summary>
    public const string Mlp = "MLP";
    /// <summary>A bidirectional LSTM followed by a two-layer MLP.</summary>
    public const string Lstm = "LSTM";

    /// <inheritdoc />
    [JsonPropertyName("peft_type")] // repeated: without it the override is written a second time as "PeftType"
    public override PeftType PeftType => PeftType.PTuning;

    /// <summary><c>"MLP"</c> or <c>"LSTM"</c>.</summary>
    [JsonPropertyName("encoder_reparameterization_type")]
    public string EncoderReparameterizationType { get; init; } = Mlp;

    /// <summary>Hidden size of the encoder; the token dimension when left out.</summary>
    [JsonPropertyName("encoder_hidden_size")]
    public int? EncoderHiddenSize { get; init; }

    /// <summary>LSTM layers (the MLP always has two hidden layers, as in the reference).</summary>
    [JsonPropertyName("encoder_num_layers")]
    public int EncoderNumLayers { get; init; } = 2;

    /// <summary>Dropout between the LSTM's layers.</summary>
    [JsonPropertyName("encoder_dropout")]
    public double EncoderDropout { get; init; }

    /// <inheritdoc />
    public override void Validate()
    {
        base.Validate();
        if (EncoderReparameterizationType is not (Mlp or Lstm))
        {
            throw new PeftConfigException($"`encoder_reparameterization_type` = \"{EncoderReparameterizationType}\" is not one of \"{Mlp}\", \"{Lstm}\".");
        }
        if (EncoderHiddenSize is <= 0) throw new PeftConfigException($"`encoder_hidden_size` must be a positive integer, got {EncoderHiddenSize}.");
        if (EncoderNumLayers <= 0) throw new PeftConfigException($"`encoder_num_layers` must be a positive integer, got {EncoderNumLayers}.");
        if (EncoderDropout is < 0 or >= 1) throw new PeftConfigException($"`encoder_dropout` must be in [0, 1), got {EncoderDropout}.");
    }

    /// <inheritdoc />
    public override PromptLearningConfig ForModel(PromptLayout layout, TaskType task)
    {
        var resolved = (PromptEncoderConfig)base.ForModel(layout, task);
        return resolved with { EncoderHiddenSize = resolved.EncoderHiddenSize ?? resolved.TokenDim };
    }
}
