// Prompt tuning's encoder, following peft's tuners/prompt_tuning/model.py.
using Peft.Modeling;
using Peft.PromptLearning;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Methods.PromptTuning;

/// <summary>The soft prompt: an embedding of the virtual tokens, nothing more (the reference's <c>PromptEmbedding</c>).</summary>
public sealed class PromptEmbedding : PromptEncoder
{
    /// <summary>An embedding of <see cref="PromptLearningConfig.TotalVirtualTokens"/> rows, initialised as the config says.</summary>
    /// <exception cref="PeftConfigException">A <c>TEXT</c> init without token ids, or with more tokens than virtual tokens.</exception>
    public PromptEmbedding(PromptTuningConfig config, PreTrainedModel model)
        : base("PromptEmbedding", config.TotalVirtualTokens, config.TokenDim!.Value, config.InferenceMode)
    {
        RegisterComponents();
        if (config.InferenceMode) return;                                      // the weights come from a saved adapter
        var rows = config.TotalVirtualTokens;
        var ids = config.PromptTuningInit switch
        {
            PromptTuningConfig.SampleVocabInit => torch.randint(LayerShape.Of(model.InputEmbeddings).InFeatures, rows, ScalarType.Int64),
            PromptTuningConfig.TextInit => TextIds(config, rows),
            _ => null,
        };
        if (ids is null) return;                                               // RANDOM: the embedding's normal init
        using var noGrad = torch.no_grad();
        var device = embedding.weight!.device;
        var words = model.InputEmbeddings.call(ids.to(device));
        embedding.weight.copy_(words.to(ScalarType.Float32));
    }

    /// <summary>The text's ids, repeated until they fill every virtual token.</summary>
    private static Tensor TextIds(PromptTuningConfig config, long rows)
    {
        var ids = config.TextTokenIds();
        if (ids.Count > rows)
        {
            throw new PeftConfigException(
                $"`prompt_tuning_init_text` has {ids.Count} tokens but there are only {rows} virtual tokens (num_virtual_tokens = {config.NumVirtualTokens}); shorten the text or raise num_virtual_tokens.");
        }
        var filled = Enumerable.Range(0, (int)rows).Select(i => ids[i % ids.Count]).ToArray();
        return torch.tensor(filled, ScalarType.Int64);
    }
}
