// The butterfly permutations, following peft/tuners/boft/layer.py (block_butterfly_perm, perm2mat).
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Methods.Boft;

/// <summary>The permutation matrices that interleave BOFT's block-diagonal factors into a butterfly.</summary>
public static class Butterfly
{
    /// <summary>
    /// The reference's <c>block_butterfly_perm(n, b, r, factors)</c>: within each of <paramref name="blocks"/>
    /// consecutive groups of n / b features, groups of <paramref name="width"/> move so that the even-numbered
    /// ones come first, then the odd-numbered ones. The identity when <paramref name="factors"/> is 0.
    /// </summary>
    public static long[] Permutation(long n, long blocks, long width, int factors)
    {
        var indices = Enumerable.Range(0, (int)n).Select(i => (long)i).ToArray();
        if (factors == 0) return indices;
        if (blocks * width * 2 > n) throw new PeftConfigException("Invalid number of blocks!");
        var blockSize = n / blocks;
        var step = (double)blockSize / width;
        var sequence = new List<long>();
        for (double p = 0; p < step; p += 2) sequence.Add((long)p);
        for (double p = 1; p < step; p += 2) sequence.Add((long)p);
        var order = new long[blockSize];
        for (int i = 0; i < sequence.Count; i++)
        {
            for (long k = 0; k < width && i * width + k < blockSize; k++) order[i * width + k] = sequence[i] * width + k;
        }
        var result = new long[n];
        for (long start = 0; start < n; start += blockSize)
        {
            for (long k = 0; k < blockSize; k++) result[start + k] = indices[start + order[k]];
        }
        return result;
    }

    /// <summary>The reference's <c>perm2mat</c>: P[i, perm[i]] = 1.</summary>
    public static Tensor Matrix(long[] permutation)
    {
        var n = permutation.Length;
        var values = new float[n * n];
        for (int i = 0; i < n; i++) values[i * n + permutation[i]] = 1;
        return torch.tensor(values, [n, n]);
    }
}
