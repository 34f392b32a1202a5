using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Layers;

/// <summary>
/// GPT-2's "Conv1D": a linear layer whose weight is stored transposed, (in, out), as in
/// transformers' <c>pytorch_utils.Conv1D</c>. Checkpoints store it that way, so it is kept that way.
/// </summary>
public sealed class Conv1D : nn.Module<Tensor, Tensor>
{
    /// <summary>Weight, shape (in_features, out_features).</summary>
    public Parameter weight;

    /// <summary>Bias, shape (out_features).</summary>
    public Parameter bias;

    /// <summary>A layer mapping <paramref name="inFeatures"/> to <paramref name="outFeatures"/>, initialised as GPT-2 does (normal, std 0.02).</summary>
    public Conv1D(long inFeatures, long outFeatures) : base(nameof(Conv1D))
    {
        weight = new Parameter(torch.empty(inFeatures, outFeatures));
        nn.init.normal_(weight, std: 0.02);
        bias = new Parameter(torch.zeros(outFeatures));
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input) => torch.addmm(bias, input.reshape(-1, input.shape[^1]), weight, beta: 1, alpha: 1).view([.. input.shape[..^1], weight.shape[1]]);
}
