using Peft.Modeling;
using Peft.PromptLearning;

namespace Peft.Methods.PrefixTuning;

/// <summary>
/// Prefix tuning (Li and Liang, 2021): learned keys and values put before every attention layer's
/// own, handed to the model as the initial KV cache.
/// </summary>
public sealed class PrefixTuningMethod : PromptLearningMethod<PrefixTuningConfig>
{
    /// <inheritdoc />
    public override PeftType PeftType => PeftType.PrefixTuning;

    /// <inheritdoc />
    protected override PromptEncoder CreateEncoder(PrefixTuningConfig config, PreTrainedModel model) => new PrefixEncoder(config);
}
