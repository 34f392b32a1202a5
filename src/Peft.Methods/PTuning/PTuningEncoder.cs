// P-tuning's prompt encoder, following peft's tuners/p_tuning/model.py.
using Peft.PromptLearning;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Methods.PTuning;

/// <summary>
/// Virtual token embeddings reparameterised by an MLP (<c>mlp_head</c>: Linear, ReLU, Linear, ReLU,
/// Linear) or by a bidirectional LSTM and a two-layer MLP (<c>lstm_head</c>, <c>mlp_head</c>); the
/// reference's <c>PromptEncoder</c>. In inference mode only the embedding exists and holds the prompts.
/// </summary>
public sealed class PTuningEncoder : PromptEncoder
{
#pragma warning disable IDE1006 // Hugging Face's module names
    private readonly LSTM? lstm_head;
    private readonly Sequential? mlp_head;
#pragma warning restore IDE1006

    /// <summary>An encoder sized by a resolved config.</summary>
    public PTuningEncoder(PromptEncoderConfig config)
        : base("PromptEncoder", config.TotalVirtualTokens, config.TokenDim!.Value, config.InferenceMode)
    {
        var dim = config.TokenDim.Value;
        var hidden = config.EncoderHiddenSize!.Value;
        if (!config.InferenceMode)
        {
            if (config.EncoderReparameterizationType == PromptEncoderConfig.Lstm)
            {
                lstm_head = nn.LSTM(dim, hidden, config.EncoderNumLayers, batchFirst: true, dropout: config.EncoderDropout, bidirectional: true);
                mlp_head = nn.Sequential(nn.Linear(2 * hidden, 2 * hidden), nn.ReLU(), nn.Linear(2 * hidden, dim));
            }
            else
            {
                mlp_head = nn.Sequential(
                    nn.Linear(dim, hidden), nn.ReLU(),
                    nn.Linear(hidden, hidden), nn.ReLU(),
                    nn.Linear(hidden, dim));
            }
        }
        RegisterComponents();
    }

    /// <inheritdoc />
    public override bool Reparameterizes => true;

    /// <inheritdoc />
    public override Tensor forward(Tensor indices)
    {
        using var scope = torch.NewDisposeScope();
        var embeds = embedding.call(indices);                                 // (B, V, D)
        if (mlp_head is null) return embeds.MoveToOuterDisposeScope();
        if (lstm_head is not null) embeds = RunLstm(lstm_head, embeds);       // (B, V, 2H)
        return mlp_head.call(embeds).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Runs the LSTM with autograd on and detaches the result when the caller had it off.
    /// </summary>
    /// <remarks>
    /// TorchSharp 0.107's float32 LSTM is wrong under no_grad on AVX-512 CPUs (oneDNN 3.7's
    /// inference-only brgemm kernel, pytorch/pytorch#173922): up to 0.25 off. Grad mode takes the
    /// training kernel, which is right, so saving, evaluating and generating see the prompts the
    /// adapter trained with. LstmKernelTests compares this with a hand-written LSTM in every mode.
    /// </remarks>
    internal static Tensor RunLstm(LSTM lstm, Tensor input)
    {
        var gradWasOn = torch.is_grad_enabled();
        using var grad = torch.enable_grad();
        var output = lstm.call(input, null).Item1;
        return gradWasOn ? output : output.detach();
    }
}
