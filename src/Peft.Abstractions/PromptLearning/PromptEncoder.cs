using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.PromptLearning;

/// <summary>
/// The module a prompt-learning adapter owns (the reference's <c>BasePromptEncoder</c>): an
/// <c>embedding</c> of the virtual tokens and, for methods that reparameterise it, a network on top
/// (P-tuning's <c>mlp_head</c>/<c>lstm_head</c>, prefix tuning's <c>transform</c>). Registered by
/// PeftModel as <c>prompt_encoder.&lt;adapter&gt;</c>.
/// </summary>
/// <remarks>
/// In inference mode (an adapter loaded for inference) the encoder holds only the embedding, and its
/// rows are the prompts themselves: the reference saves the encoder's output, so that is all a saved
/// adapter can restore. Derived classes declare their own children and call <c>RegisterComponents()</c>.
/// </remarks>
public abstract class PromptEncoder : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // Hugging Face's module name
    /// <summary>The virtual token embedding, registered as <c>embedding</c>.</summary>
    protected readonly Embedding embedding;
#pragma warning restore IDE1006

    /// <summary>Creates the embedding of <paramref name="rows"/> virtual tokens, each <paramref name="width"/> wide.</summary>
    protected PromptEncoder(string name, long rows, long width, bool inferenceMode) : base(name)
    {
        embedding = nn.Embedding(rows, width);
        InferenceMode = inferenceMode;
    }

    /// <summary>True when the encoder holds only the embedding and its rows are the prompts.</summary>
    public bool InferenceMode { get; }

    /// <summary>Whether a network computes the prompts from the embedding (so the saved prompts are its output).</summary>
    public virtual bool Reparameterizes => false;

    /// <summary>The virtual token embedding.</summary>
    public Embedding Embedding => embedding;

    /// <summary>Rows of the embedding (virtual tokens).</summary>
    public long Rows => embedding.weight!.shape[0];

    /// <summary>Encodes virtual token indices (batch, tokens) into prompts (batch, tokens, width).</summary>
    public override Tensor forward(Tensor indices) => embedding.call(indices);

    /// <summary>
    /// All prompts, (rows, width): the embedding's rows in inference mode, else the encoder's output
    /// for every virtual token (what the reference's get_prompt computes). Carries gradients.
    /// </summary>
    public Tensor Prompts()
    {
        var weight = embedding.weight!;
        if (InferenceMode) return weight;
        using var scope = torch.NewDisposeScope();
        var indices = torch.arange(Rows, device: weight.device).unsqueeze(0);
        return forward(indices)[0].MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Loads a saved <c>prompt_embeddings</c> tensor into the embedding, as the reference does.
    /// </summary>
    /// <exception cref="InvalidDataException">The tensor does not fit the embedding.</exception>
    public virtual void LoadPromptEmbeddings(Tensor saved, string source)
    {
        var weight = embedding.weight!;
        if (!saved.shape.SequenceEqual(weight.shape))
        {
            throw new InvalidDataException(
                $"{source}: 'prompt_embeddings' has shape [{string.Join(", ", saved.shape)}] but the prompt encoder's embedding is [{string.Join(", ", weight.shape)}].");
        }
        using var noGrad = torch.no_grad();
        weight.copy_(saved);
    }
}
