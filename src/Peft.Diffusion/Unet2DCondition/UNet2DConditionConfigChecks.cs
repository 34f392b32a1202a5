using System.Text.Json;
using Peft.Modeling;

namespace Peft.Diffusion.Unet2DCondition;

/// <summary>The checks of <see cref="UNet2DConditionConfig.Validate"/>: block types, list lengths, divisibility, and the diffusers options not built here.</summary>
internal static class UNet2DConditionConfigChecks
{
    /// <summary>Block types this library builds.</summary>
    public static readonly string[] DownBlocks = ["CrossAttnDownBlock2D", "DownBlock2D"];

    /// <summary>Up block types this library builds.</summary>
    public static readonly string[] UpBlocks = ["CrossAttnUpBlock2D", "UpBlock2D"];

    /// <summary>The middle block this library builds (or none).</summary>
    public const string MidBlock = "UNetMidBlock2DCrossAttn";

    /// <summary>
    /// diffusers options whose non-default values change the model in ways not built here (class and added
    /// embeddings, SDXL's extra inputs, other time embeddings, dual or cross-only attention...): each key with the
    /// only value accepted. They are not typed, so they arrive in ExtensionData.
    /// </summary>
    private static readonly (string Key, string Default)[] DefaultOnly =
    [
        ("num_attention_heads", "null"), ("encoder_hid_dim", "null"), ("encoder_hid_dim_type", "null"),
        ("class_embed_type", "null"), ("addition_embed_type", "null"), ("addition_time_embed_dim", "null"),
        ("num_class_embeds", "null"), ("time_embedding_act_fn", "null"), ("timestep_post_act", "null"),
        ("time_cond_proj_dim", "null"), ("projection_class_embeddings_input_dim", "null"), ("cross_attention_norm", "null"),
        ("reverse_transformer_layers_per_block", "null"), ("dual_cross_attention", "false"), ("class_embeddings_concat", "false"),
        ("mid_block_only_cross_attention", "null"), ("time_embedding_type", "\"positional\""), ("attention_type", "\"default\""),
    ];

    private static readonly string[] ActivationNames = ["silu", "swish", "gelu", "relu"];

    public static void Check(UNet2DConditionConfig config, string source)
    {
        CheckUnsupportedKeys(config, source);
        var blocks = config.Blocks;
        if (blocks == 0) throw new ModelConfigException($"{source} at key 'down_block_types': the list is empty.");
        foreach (var type in config.DownBlockTypes) CheckType("down_block_types", type, DownBlocks, source);
        foreach (var type in config.UpBlockTypes) CheckType("up_block_types", type, UpBlocks, source);
        if (config.MidBlockType is { } mid && mid != MidBlock)
        {
            throw new ModelConfigException($"{source} at key 'mid_block_type': block type '{mid}' is not supported (supported: {MidBlock}, or null for none).");
        }
        if (config.UpBlockTypes.Count != blocks)
        {
            throw new ModelConfigException($"{source}: {config.UpBlockTypes.Count} up_block_types for {blocks} down_block_types (diffusers needs as many).");
        }
        if (config.BlockOutChannels.Count != blocks)
        {
            throw new ModelConfigException($"{source} at key 'block_out_channels': {config.BlockOutChannels.Count} entries for {blocks} down_block_types.");
        }
        config.LayersPerBlock.Check("layers_per_block", blocks, 1, source);
        config.CrossAttentionDim.Check("cross_attention_dim", blocks, 1, source);
        config.TransformerLayersPerBlock.Check("transformer_layers_per_block", blocks, 1, source);
        config.AttentionHeadDim.Check("attention_head_dim", blocks, 1, source);
        if (config.NormNumGroups is not { } groups || groups < 1)
        {
            throw new ModelConfigException($"{source} at key 'norm_num_groups': {config.NormNumGroups?.ToString() ?? "null"} is not supported (the blocks here need GroupNorm groups ≥ 1).");
        }
        for (int i = 0; i < blocks; i++)
        {
            var channels = config.BlockOutChannels[i];
            if (channels % groups != 0)
            {
                throw new ModelConfigException($"{source} at key 'block_out_channels': {channels} channels are not a multiple of norm_num_groups = {groups}.");
            }
            if (channels % config.AttentionHeadDim.At(i) != 0)
            {
                throw new ModelConfigException($"{source} at key 'attention_head_dim': block {i}'s {channels} channels are not a multiple of its {config.AttentionHeadDim.At(i)} heads.");
            }
        }
        if (!ActivationNames.Contains(config.ActFn))
        {
            throw new ModelConfigException($"{source} at key 'act_fn': '{config.ActFn}' is not supported (supported: {string.Join(", ", ActivationNames)}).");
        }
        if (config.ResnetTimeScaleShift is not ("default" or "scale_shift"))
        {
            throw new ModelConfigException($"{source} at key 'resnet_time_scale_shift': '{config.ResnetTimeScaleShift}' is not supported (supported: default, scale_shift).");
        }
        if (config.ConvInKernel % 2 == 0 || config.ConvOutKernel % 2 == 0)
        {
            throw new ModelConfigException($"{source}: conv_in_kernel and conv_out_kernel must be odd (got {config.ConvInKernel} and {config.ConvOutKernel}).");
        }
        if (config.DownsamplePadding is not (0 or 1))
        {
            throw new ModelConfigException($"{source} at key 'downsample_padding': {config.DownsamplePadding} is not supported (0 or 1).");
        }
        if (config.TimeEmbedDim < 1 || config.BlockOutChannels[0] < 2)
        {
            throw new ModelConfigException($"{source}: the time embedding needs block_out_channels[0] ≥ 2 and time_embedding_dim ≥ 1.");
        }
    }

    private static void CheckType(string key, string type, string[] supported, string source)
    {
        if (!supported.Contains(type))
        {
            throw new ModelConfigException($"{source} at key '{key}': block type '{type}' is not supported (supported: {string.Join(", ", supported)}).");
        }
    }

    private static void CheckUnsupportedKeys(UNet2DConditionConfig config, string source)
    {
        var extra = config.ExtensionData;
        if (extra is null) return;
        foreach (var (key, accepted) in DefaultOnly)
        {
            if (!extra.TryGetValue(key, out var value)) continue;
            var given = value.GetRawText();
            if (given == accepted || (accepted == "null" && value.ValueKind == JsonValueKind.False)) continue;
            throw new ModelConfigException($"{source} at key '{key}': {given} is not supported (only {accepted}, diffusers' default, is built here).");
        }
        // only_cross_attention may be a bool or one bool per block; cross-attention-only blocks are not built.
        if (extra.TryGetValue("only_cross_attention", out var only) && (only.ValueKind == JsonValueKind.True
            || (only.ValueKind == JsonValueKind.Array && only.EnumerateArray().Any(e => e.ValueKind == JsonValueKind.True))))
        {
            throw new ModelConfigException($"{source} at key 'only_cross_attention': {only.GetRawText()} is not supported (only false).");
        }
    }
}
