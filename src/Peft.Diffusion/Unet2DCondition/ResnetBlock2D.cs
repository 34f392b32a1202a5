// diffusers' models/resnet.py: ResnetBlock2D (pre-norm, time embedding added or scale/shift, optional 1×1 shortcut).
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Diffusion.Unet2DCondition;

/// <summary>
/// norm1 → act → conv1 → + time_emb_proj(act(temb)) → norm2 → act → dropout → conv2, plus the input
/// (through conv_shortcut when the channels change), divided by the output scale factor.
/// </summary>
[TargetModules("conv1", "time_emb_proj", "conv2", "conv_shortcut")]
public sealed partial class ResnetBlock2D : nn.Module
{
    private readonly GroupNorm norm1;
    private nn.Module<Tensor, Tensor> conv1;
    private nn.Module<Tensor, Tensor> time_emb_proj;
    private readonly GroupNorm norm2;
    private readonly Dropout dropout;
    private nn.Module<Tensor, Tensor> conv2;
    private nn.Module<Tensor, Tensor>? conv_shortcut;
    private readonly Func<Tensor, Tensor> _activation;
    private readonly bool _scaleShift;
    private readonly double _outputScaleFactor;

    /// <summary>A block from <paramref name="inChannels"/> to <paramref name="outChannels"/> channels.</summary>
    public ResnetBlock2D(UNet2DConditionConfig config, int inChannels, int outChannels, double outputScaleFactor = 1.0) : base(nameof(ResnetBlock2D))
    {
        _scaleShift = config.ResnetTimeScaleShift == "scale_shift";
        norm1 = new GroupNorm(config.Groups, inChannels, config.NormEps);
        conv1 = nn.Conv2d(inChannels, outChannels, 3, padding: 1);
        time_emb_proj = nn.Linear(config.TimeEmbedDim, _scaleShift ? 2 * outChannels : outChannels);
        norm2 = new GroupNorm(config.Groups, outChannels, config.NormEps);
        dropout = nn.Dropout(config.Dropout);
        conv2 = nn.Conv2d(outChannels, outChannels, 3, padding: 1);
        conv_shortcut = inChannels != outChannels ? nn.Conv2d(inChannels, outChannels, 1) : null;
        _activation = Activations.Get(config.ActFn);
        _outputScaleFactor = outputScaleFactor;
        RegisterComponents();
    }

    /// <summary>(B, C_in, H, W) and the time embedding (B, T) → (B, C_out, H, W).</summary>
    public Tensor forward(Tensor input, Tensor temb)
    {
        using var scope = torch.NewDisposeScope();
        var hidden = conv1.call(_activation(norm1.call(input)));
        var time = time_emb_proj.call(_activation(temb)).unsqueeze(-1).unsqueeze(-1);      // (B, C, 1, 1)
        if (_scaleShift)
        {
            var parts = time.chunk(2, dim: 1);
            hidden = norm2.call(hidden) * (1 + parts[0]) + parts[1];
        }
        else
        {
            hidden = norm2.call(hidden + time);
        }
        hidden = conv2.call(dropout.call(_activation(hidden)));
        var shortcut = conv_shortcut?.call(input) ?? input;
        var output = shortcut + hidden;
        if (_outputScaleFactor != 1.0) output = output / _outputScaleFactor;
        return output.MoveToOuterDisposeScope();
    }
}
