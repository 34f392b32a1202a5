// diffusers' models/transformers/transformer_2d.py, continuous inputs: GroupNorm, proj_in (1×1 conv or Linear),
// transformer blocks over the H·W tokens, proj_out, plus the input.
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Diffusion.Unet2DCondition;

/// <summary>The spatial transformer of a cross-attention block (<c>attentions.M</c>).</summary>
[TargetModules("proj_in", "proj_out")]
public sealed partial class Transformer2DModel : nn.Module
{
    private readonly GroupNorm norm;
    private nn.Module<Tensor, Tensor> proj_in;
    private readonly ModuleList<BasicTransformerBlock> transformer_blocks;
    private nn.Module<Tensor, Tensor> proj_out;
    private readonly bool _linearProjection;

    /// <summary>A transformer over <paramref name="channels"/> channels with <paramref name="heads"/> heads and <paramref name="layers"/> blocks, attending to a <paramref name="contextDim"/>-wide context.</summary>
    public Transformer2DModel(UNet2DConditionConfig config, int channels, int heads, int contextDim, int layers) : base(nameof(Transformer2DModel))
    {
        _linearProjection = config.UseLinearProjection;
        norm = new GroupNorm(config.Groups, channels, 1e-6);
        proj_in = _linearProjection ? nn.Linear(channels, channels) : nn.Conv2d(channels, channels, 1);
        transformer_blocks = nn.ModuleList(Enumerable.Range(0, layers)
            .Select(_ => new BasicTransformerBlock(channels, heads, contextDim, config.Dropout, config.UpcastAttention)).ToArray());
        proj_out = _linearProjection ? nn.Linear(channels, channels) : nn.Conv2d(channels, channels, 1);
        RegisterComponents();
    }

    /// <summary>(B, C, H, W) and the text context (B, S, C') → (B, C, H, W).</summary>
    public Tensor forward(Tensor input, Tensor context, Tensor? contextMask)
    {
        using var scope = torch.NewDisposeScope();
        var (batch, channels, height, width) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3]);
        var hidden = norm.call(input);
        hidden = _linearProjection
            ? proj_in.call(Tokens(hidden, batch, channels, height, width))
            : Tokens(proj_in.call(hidden), batch, channels, height, width);           // (B, H·W, C)
        foreach (var block in transformer_blocks) hidden = block.forward(hidden, context, contextMask);
        hidden = _linearProjection
            ? Map(proj_out.call(hidden), batch, channels, height, width)
            : proj_out.call(Map(hidden, batch, channels, height, width));
        return (hidden + input).MoveToOuterDisposeScope();
    }

    private static Tensor Tokens(Tensor map, long batch, long channels, long height, long width) =>
        map.permute(0, 2, 3, 1).reshape(batch, height * width, channels);

    private static Tensor Map(Tensor tokens, long batch, long channels, long height, long width) =>
        tokens.reshape(batch, height, width, channels).permute(0, 3, 1, 2).contiguous();
}
