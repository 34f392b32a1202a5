// diffusers' models/unets/unet_2d_condition.py: UNet2DConditionModel (Stable Diffusion's denoiser), for the block types
// and options UNet2DConditionConfig accepts. Module names are diffusers', so checkpoints and PEFT adapters load by name.
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Diffusion.Unet2DCondition;

/// <summary>
/// The conditional UNet: time embedding, conv_in, down blocks (keeping skip connections), the middle block, up blocks
/// (each ResNet concatenating a skip), GroupNorm, activation, conv_out. As a <see cref="PreTrainedModel"/> its inputs are
/// <see cref="ModelInputs.PixelValues"/> (the noisy latents), <see cref="ModelInputs.Timestep"/>,
/// <see cref="ModelInputs.EncoderHiddenStates"/> (the text encoder's output) and optionally
/// <see cref="ModelInputs.AttentionMask"/> (diffusers' <c>encoder_attention_mask</c>, over the text tokens);
/// <see cref="ModelOutputs.Logits"/> is the prediction, and <see cref="ModelInputs.Labels"/> (the target) gives the
/// mean-squared-error loss diffusers' training scripts use.
/// </summary>
[TargetModules("conv_in", "conv_out")]
public sealed partial class UNet2DConditionModel : PreTrainedModel
{
    private nn.Module<Tensor, Tensor> conv_in;
    private readonly Timesteps time_proj;
    private readonly TimestepEmbedding time_embedding;
    private readonly ModuleList<nn.Module> down_blocks;
    private readonly UNetMidBlock2DCrossAttn? mid_block;
    private readonly ModuleList<nn.Module> up_blocks;
    private readonly GroupNorm conv_norm_out;
    private nn.Module<Tensor, Tensor> conv_out;
    private readonly Func<Tensor, Tensor> _activation;

    /// <summary>A randomly initialised UNet of <paramref name="config"/>'s sizes (validated here, as the loader validates).</summary>
    /// <exception cref="ModelConfigException">The config names a block type or option this library does not build.</exception>
    public UNet2DConditionModel(UNet2DConditionConfig config) : base(UNet2DConditionConfig.ClassName, Checked(config), UNet2DConditionArchitecture.Denoising)
    {
        Unet = config;
        Architecture = UNet2DConditionArchitecture.Instance;
        var first = config.BlockOutChannels[0];
        conv_in = nn.Conv2d(config.InChannels, first, config.ConvInKernel, padding: (config.ConvInKernel - 1) / 2);
        time_proj = new Timesteps(first, config.FlipSinToCos, config.FreqShift);
        time_embedding = new TimestepEmbedding(first, config.TimeEmbedDim, config.ActFn);

        var downs = new List<nn.Module>();
        var output = first;
        for (int i = 0; i < config.Blocks; i++)
        {
            var input = output;
            output = config.BlockOutChannels[i];
            var last = i == config.Blocks - 1;
            downs.Add(config.DownBlockTypes[i] == "CrossAttnDownBlock2D"
                ? new CrossAttnDownBlock2D(config, i, input, !last)
                : new DownBlock2D(config, i, input, !last));
        }
        down_blocks = nn.ModuleList(downs.ToArray());
        mid_block = config.MidBlockType is null ? null : new UNetMidBlock2DCrossAttn(config);
        up_blocks = nn.ModuleList(UpBlockLayout.Of(config)
            .Select(layout => config.UpBlockTypes[layout.Index] == "CrossAttnUpBlock2D"
                ? (nn.Module)new CrossAttnUpBlock2D(config, layout)
                : new UpBlock2D(config, layout)).ToArray());
        conv_norm_out = new GroupNorm(config.Groups, first, config.NormEps);
        conv_out = nn.Conv2d(first, config.OutChannels, config.ConvOutKernel, padding: (config.ConvOutKernel - 1) / 2);
        _activation = Activations.Get(config.ActFn);
        RegisterComponents();
    }

    /// <summary>The config.</summary>
    public UNet2DConditionConfig Unet { get; }

    /// <summary>diffusers' module for this class, as PEFT records it in an adapter's auto_mapping.</summary>
    public override string TransformersModule => "diffusers.models.unets.unet_2d_condition";

    /// <summary>The UNet has no token embedding: this is its input convolution (prompt learning does not apply).</summary>
    public override nn.Module<Tensor, Tensor> InputEmbeddings => conv_in;

    /// <summary>No classification heads: every module is a body module.</summary>
    public override IReadOnlyList<string> HeadModuleNames => [];

    /// <inheritdoc />
    public override ModelOutputs forward(ModelInputs inputs)
    {
        var sample = inputs.PixelValues ?? throw new ArgumentException("The UNet needs the noisy latents as PixelValues (batch, in_channels, height, width).");
        var timestep = inputs.Timestep ?? throw new ArgumentException("The UNet needs the diffusion Timestep (a scalar or one per sample).");
        var context = inputs.EncoderHiddenStates ?? throw new ArgumentException("The UNet needs the text encoder's output as EncoderHiddenStates (batch, tokens, cross_attention_dim).");
        using var scope = torch.NewDisposeScope();
        var prediction = Denoise(sample, timestep, context, inputs.AttentionMask);
        Tensor? loss = inputs.Labels is { } target ? nn.functional.mse_loss(Precision.AtLeastFloat32(prediction), Precision.AtLeastFloat32(target)) : null;
        return new ModelOutputs { Logits = prediction.MoveToOuterDisposeScope(), Loss = loss?.MoveToOuterDisposeScope() };
    }

    /// <summary>
    /// The prediction (noise, for epsilon training) for noisy latents <paramref name="sample"/> (B, C, H, W) at
    /// <paramref name="timestep"/> (scalar or (B)), conditioned on <paramref name="context"/> (B, S, cross_attention_dim).
    /// </summary>
    /// <param name="sample">The noisy latents.</param>
    /// <param name="timestep">The timestep: a scalar for the whole batch, or one per sample.</param>
    /// <param name="context">The text encoder's last hidden state.</param>
    /// <param name="contextMask">1 for text tokens to attend to, 0 for padding, (B, S); null: all.</param>
    public Tensor Denoise(Tensor sample, Tensor timestep, Tensor context, Tensor? contextMask = null)
    {
        using var scope = torch.NewDisposeScope();
        var batch = sample.shape[0];
        // diffusers turns the mask into a bias of −10000 on padding, broadcast over heads and queries: (B, 1, 1, S).
        var bias = contextMask is null ? null : ((1 - contextMask.to(sample.dtype)) * -10000.0).unsqueeze(1).unsqueeze(1);
        if (Unet.CenterInputSample) sample = 2 * sample - 1.0;

        var steps = (timestep.dim() == 0 ? timestep.unsqueeze(0) : timestep).to(sample.device).expand(batch);
        var temb = time_embedding.call(time_proj.call(steps).to(sample.dtype));                  // (B, time_embed_dim)

        var hidden = conv_in.call(sample);
        var skips = new List<Tensor> { hidden };
        foreach (var block in down_blocks)
        {
            (hidden, var outputs) = ((IUNetDownBlock)block).Forward(hidden, temb, context, bias);
            skips.AddRange(outputs);
        }
        if (mid_block is not null) hidden = mid_block.forward(hidden, temb, context, bias);

        for (int i = 0; i < up_blocks.Count; i++)
        {
            var block = (IUNetUpBlock)up_blocks[i];
            var taken = skips.GetRange(skips.Count - block.SkipCount, block.SkipCount);
            skips.RemoveRange(skips.Count - block.SkipCount, block.SkipCount);
            // Upsample to the next skip's size: 2× when the input divides evenly, else what the downsampler's rounding gave.
            long[]? size = skips.Count > 0 ? [skips[^1].shape[2], skips[^1].shape[3]] : null;
            hidden = block.Forward(hidden, taken, temb, context, bias, size);
        }
        hidden = conv_out.call(_activation(conv_norm_out.call(hidden)));
        return hidden.MoveToOuterDisposeScope();
    }

    private static UNet2DConditionConfig Checked(UNet2DConditionConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate("UNet2DConditionConfig");
        return config;
    }
}
