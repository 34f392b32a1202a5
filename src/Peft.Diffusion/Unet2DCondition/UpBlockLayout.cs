namespace Peft.Diffusion.Unet2DCondition;

/// <summary>
/// The channels of up block <see cref="Index"/>, as diffusers' UNet2DConditionModel computes them: up block i mirrors down
/// block n−1−i, takes the previous up block's output, and its ResNet j concatenates one skip (the last ResNet's skip comes
/// from the block below: <see cref="SkipInChannels"/>).
/// </summary>
/// <param name="Index">Up block index, from the bottom.</param>
/// <param name="DownBlock">The down block it mirrors (n − 1 − index): its heads, context width and transformer depth.</param>
/// <param name="OutChannels">reversed(block_out_channels)[index].</param>
/// <param name="PrevOutChannels">The previous up block's output (for the first, the bottom channels).</param>
/// <param name="SkipInChannels">reversed(block_out_channels)[min(index + 1, n − 1)].</param>
/// <param name="Layers">reversed(layers_per_block)[index] + 1.</param>
/// <param name="AddUpsample">All but the last up block upsample.</param>
public sealed record UpBlockLayout(int Index, int DownBlock, int OutChannels, int PrevOutChannels, int SkipInChannels, int Layers, bool AddUpsample)
{
    /// <summary>The layouts of every up block of <paramref name="config"/>.</summary>
    public static IReadOnlyList<UpBlockLayout> Of(UNet2DConditionConfig config)
    {
        var n = config.Blocks;
        var reversed = config.BlockOutChannels.Reverse().ToArray();
        var layouts = new List<UpBlockLayout>();
        var output = reversed[0];
        for (int i = 0; i < n; i++)
        {
            var previous = output;
            output = reversed[i];
            var down = n - 1 - i;
            layouts.Add(new UpBlockLayout(i, down, output, previous, reversed[Math.Min(i + 1, n - 1)], config.LayersPerBlock.At(down) + 1, i != n - 1));
        }
        return layouts;
    }

    /// <summary>Input channels of each ResNet: (previous output or this block's output) + the skip it concatenates.</summary>
    public IEnumerable<int> ResnetInputs()
    {
        for (int j = 0; j < Layers; j++)
        {
            var skip = j == Layers - 1 ? SkipInChannels : OutChannels;
            var input = j == 0 ? PrevOutChannels : OutChannels;
            yield return input + skip;
        }
    }
}
