using Peft.Modeling;
using Peft.PromptLearning;

namespace Peft.Methods.PTuning;

/// <summary>
/// P-tuning (Liu et al., 2021): virtual token embeddings computed by a small network (MLP or LSTM)
/// from learned inputs, put before the input's token embeddings.
/// </summary>
public sealed class PTuningMethod : PromptLearningMethod<PromptEncoderConfig>
{
    /// <inheritdoc />
    public override PeftType PeftType => PeftType.PTuning;

    /// <inheritdoc />
    protected override PromptEncoder CreateEncoder(PromptEncoderConfig config, PreTrainedModel model) => new PTuningEncoder(config);
}
