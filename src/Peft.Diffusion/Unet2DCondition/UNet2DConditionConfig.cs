using System.Text.Json;
using System.Text.Json.Serialization;
using Peft.Modeling;

namespace Peft.Diffusion.Unet2DCondition;

/// <summary>
/// diffusers' <c>unet/config.json</c> for <c>UNet2DConditionModel</c> (defaults as diffusers' constructor: Stable Diffusion 1.x).
/// Keys this library models are typed; keys it does not support are refused by <see cref="Validate"/> unless they hold
/// diffusers' default; other keys (<c>_diffusers_version</c>, ...) are kept in <see cref="ModelConfig.ExtensionData"/>.
/// </summary>
public sealed record UNet2DConditionConfig : ModelConfig
{
    /// <summary>The value diffusers writes as <c>_class_name</c>.</summary>
    public const string ClassName = "UNet2DConditionModel";

    /// <summary>Creates a config with diffusers' defaults; its <see cref="ModelConfig.ModelType"/> names the class.</summary>
    public UNet2DConditionConfig() => ModelType = ClassName;

    /// <summary>Latent channels in.</summary>
    [JsonPropertyName("in_channels")]
    public int InChannels { get; init; } = 4;

    /// <summary>Latent channels out (the predicted noise).</summary>
    [JsonPropertyName("out_channels")]
    public int OutChannels { get; init; } = 4;

    /// <summary>The training resolution of the latents: one integer or [height, width]. Informational; any size divisible as the blocks need runs.</summary>
    [JsonPropertyName("sample_size")]
    public JsonElement? SampleSize { get; init; }

    /// <summary>Maps the input from [0, 1] to [-1, 1] first (2x − 1).</summary>
    [JsonPropertyName("center_input_sample")]
    public bool CenterInputSample { get; init; }

    /// <summary>The sinusoidal timestep embedding puts cosines first.</summary>
    [JsonPropertyName("flip_sin_to_cos")]
    public bool FlipSinToCos { get; init; } = true;

    /// <summary>The frequency shift of the timestep embedding (0 or 1).</summary>
    [JsonPropertyName("freq_shift")]
    public int FreqShift { get; init; }

    /// <summary>Down blocks from the input: <c>CrossAttnDownBlock2D</c> or <c>DownBlock2D</c>.</summary>
    [JsonPropertyName("down_block_types")]
    public IReadOnlyList<string> DownBlockTypes { get; init; } = ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"];

    /// <summary>The middle block: <c>UNetMidBlock2DCrossAttn</c>, or null for none.</summary>
    [JsonPropertyName("mid_block_type")]
    public string? MidBlockType { get; init; } = "UNetMidBlock2DCrossAttn";

    /// <summary>Up blocks from the bottom: <c>CrossAttnUpBlock2D</c> or <c>UpBlock2D</c>.</summary>
    [JsonPropertyName("up_block_types")]
    public IReadOnlyList<string> UpBlockTypes { get; init; } = ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"];

    /// <summary>Channels of each down block (up blocks in reverse).</summary>
    [JsonPropertyName("block_out_channels")]
    public IReadOnlyList<int> BlockOutChannels { get; init; } = [320, 640, 1280, 1280];

    /// <summary>ResNet blocks per down block (up blocks have one more).</summary>
    [JsonPropertyName("layers_per_block")]
    public PerBlock LayersPerBlock { get; init; } = new(2);

    /// <summary>Padding of the downsampling convolutions (0: pad right and bottom by one instead).</summary>
    [JsonPropertyName("downsample_padding")]
    public int DownsamplePadding { get; init; } = 1;

    /// <summary>The middle block's ResNet outputs are divided by this.</summary>
    [JsonPropertyName("mid_block_scale_factor")]
    public double MidBlockScaleFactor { get; init; } = 1;

    /// <summary>Dropout in the ResNet and transformer blocks.</summary>
    [JsonPropertyName("dropout")]
    public double Dropout { get; init; }

    /// <summary>The activation of the ResNet blocks, the time embedding and the output (<c>silu</c>, <c>swish</c>, <c>gelu</c>, <c>relu</c>).</summary>
    [JsonPropertyName("act_fn")]
    public string ActFn { get; init; } = "silu";

    /// <summary>Groups of every GroupNorm.</summary>
    [JsonPropertyName("norm_num_groups")]
    public int? NormNumGroups { get; init; } = 32;

    /// <summary>Epsilon of the ResNet and output GroupNorms.</summary>
    [JsonPropertyName("norm_eps")]
    public double NormEps { get; init; } = 1e-5;

    /// <summary>Width of the text encoder's hidden states the cross-attention reads.</summary>
    [JsonPropertyName("cross_attention_dim")]
    public PerBlock CrossAttentionDim { get; init; } = new(1280);

    /// <summary>Transformer blocks inside each Transformer2DModel.</summary>
    [JsonPropertyName("transformer_layers_per_block")]
    public PerBlock TransformerLayersPerBlock { get; init; } = new(1);

    /// <summary>
    /// Despite its name, the number of attention heads of each block (diffusers' historical naming: head size =
    /// channels / this); <c>num_attention_heads</c> itself is refused, as diffusers refuses it.
    /// </summary>
    [JsonPropertyName("attention_head_dim")]
    public PerBlock AttentionHeadDim { get; init; } = new(8);

    /// <summary>proj_in/proj_out are Linear layers (Stable Diffusion 2) rather than 1×1 convolutions (1.x).</summary>
    [JsonPropertyName("use_linear_projection")]
    public bool UseLinearProjection { get; init; }

    /// <summary>Attention scores in float32 even for a half-precision model.</summary>
    [JsonPropertyName("upcast_attention")]
    public bool UpcastAttention { get; init; }

    /// <summary>How the time embedding enters a ResNet block: <c>default</c> (added) or <c>scale_shift</c>.</summary>
    [JsonPropertyName("resnet_time_scale_shift")]
    public string ResnetTimeScaleShift { get; init; } = "default";

    /// <summary>Width of the time embedding; null: 4 × block_out_channels[0].</summary>
    [JsonPropertyName("time_embedding_dim")]
    public int? TimeEmbeddingDim { get; init; }

    /// <summary>Kernel of conv_in.</summary>
    [JsonPropertyName("conv_in_kernel")]
    public int ConvInKernel { get; init; } = 3;

    /// <summary>Kernel of conv_out.</summary>
    [JsonPropertyName("conv_out_kernel")]
    public int ConvOutKernel { get; init; } = 3;

    /// <summary>Channels of the time embedding.</summary>
    [JsonIgnore]
    public int TimeEmbedDim => TimeEmbeddingDim ?? BlockOutChannels[0] * 4;

    /// <summary>GroupNorm groups (validated non-null).</summary>
    [JsonIgnore]
    public int Groups => NormNumGroups ?? 0;

    /// <summary>Number of down blocks.</summary>
    [JsonIgnore]
    public int Blocks => DownBlockTypes.Count;

    /// <inheritdoc />
    public override void Validate(string source)
    {
        base.Validate(source);
        UNet2DConditionConfigChecks.Check(this, source);
    }
}
