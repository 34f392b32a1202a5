using Peft.Modeling;
using Peft.PromptLearning;

namespace Peft.Methods.PromptTuning;

/// <summary>
/// Prompt tuning (Lester et al., 2021): learned embeddings of virtual tokens put before the input's
/// token embeddings.
/// </summary>
public sealed class PromptTuningMethod : PromptLearningMethod<PromptTuningConfig>
{
    /// <inheritdoc />
    public override PeftType PeftType => PeftType.PromptTuning;

    /// <inheritdoc />
    protected override PromptEncoder CreateEncoder(PromptTuningConfig config, PreTrainedModel model) => new PromptEmbedding(config, model);
}
