using Peft.Methods.Lora;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.Methods;

/// <summary>LoRA on Conv2d (the reference's lora.Conv2d): the forward pass against a hand computation, exact merging, groups.</summary>
public class LoraConv2dTests
{
    [Fact]
    public void ForwardIsTheBaseConvolutionPlusTheScaledLowRankOne()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(3);
        var conv = nn.Conv2d(2, 3, 3, padding: 1, dtype: ScalarType.Float64);
        var lora = new LoraConv2d(conv);
        lora.AddAdapter("default", rank: 2, scaling: 0.5, dropout: 0, loraBias: false, LoraInit.Random, "conv");
        lora.ActiveAdapters = ["default"];
        RandomiseLoraB(lora);
        var x = torch.randn(1, 2, 4, 4, ScalarType.Float64);

        var expected = HandConvolution(x, conv.weight!, conv.bias!, Weight(lora, "lora_A.default.weight"), Weight(lora, "lora_B.default.weight"), 0.5);
        var actual = lora.call(x);

        Assert.Equal([1L, 3, 4, 4], actual.shape);
        Assert.True((actual - expected).abs().max().item<double>() < 1e-12);
        Assert.Equal([2L, 2, 3, 3], Weight(lora, "lora_A.default.weight").shape);
        Assert.Equal([3L, 2, 1, 1], Weight(lora, "lora_B.default.weight").shape);
    }

    [Fact]
    public void MergingFoldsTheUpdateIntoTheKernelExactlyAndUnmergingRestoresIt()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(4);
        var conv = nn.Conv2d(3, 4, 3, stride: 2, padding: 1, dtype: ScalarType.Float64);
        var original = conv.weight!.clone();
        var lora = new LoraConv2d(conv);
        lora.AddAdapter("default", rank: 2, scaling: 2.0, dropout: 0, loraBias: false, LoraInit.Random, "conv");
        lora.ActiveAdapters = ["default"];
        RandomiseLoraB(lora);
        var x = torch.randn(2, 3, 7, 7, ScalarType.Float64);
        var unmerged = lora.call(x);

        lora.Merge(["default"]);
        var merged = lora.call(x);
        Assert.True((merged - unmerged).abs().max().item<double>() < 1e-12);
        // The merged kernel is W + scaling · B·A at every kernel position.
        var a = Weight(lora, "lora_A.default.weight");
        var b = Weight(lora, "lora_B.default.weight");
        var kernel = original + 2.0 * torch.einsum("oq,qckl->ockl", b.flatten(1), a);
        Assert.True((conv.weight! - kernel).abs().max().item<double>() < 1e-12);

        lora.Unmerge();
        Assert.True((conv.weight! - original).abs().max().item<double>() < 1e-12);
    }

    [Fact]
    public void GroupedConvolutionsNeedARankDivisibleByGroupsAndCannotMerge()
    {
        using var scope = torch.NewDisposeScope();
        var conv = nn.Conv2d(4, 4, 3, padding: 1, groups: 2);
        var error = Assert.Throws<PeftConfigException>(() =>
            new LoraConv2d(conv).AddAdapter("default", rank: 3, scaling: 1, dropout: 0, loraBias: false, LoraInit.Random, "block.dwconv"));
        Assert.Contains("groups=2", error.Message);
        Assert.Contains("block.dwconv", error.Message);

        var lora = new LoraConv2d(conv);
        lora.AddAdapter("default", rank: 2, scaling: 1, dropout: 0, loraBias: false, LoraInit.Random, "block.dwconv");
        lora.ActiveAdapters = ["default"];
        Assert.Equal([4L, 1, 1, 1], Weight(lora, "lora_B.default.weight").shape);
        Assert.Equal([1L, 4, 5, 5], lora.call(torch.randn(1, 4, 5, 5)).shape);
        Assert.Throws<NotSupportedException>(() => lora.Merge(["default"]));
    }

    private static Tensor Weight(nn.Module module, string name) => module.named_parameters().Single(p => p.name == name).parameter;

    private static void RandomiseLoraB(LoraConv2d lora)
    {
        using var noGrad = torch.no_grad();
        var b = Weight(lora, "lora_B.default.weight");
        b.copy_(torch.randn_like(b));
    }

    /// <summary>Stride 1, padding 1, by loops: b + Σ W·x + s · Σ_q B[o,q] Σ A[q]·x.</summary>
    private static Tensor HandConvolution(Tensor x, Tensor w, Tensor bias, Tensor a, Tensor b, double scaling)
    {
        var (channels, height, width) = ((int)x.shape[1], (int)x.shape[2], (int)x.shape[3]);
        var (outputs, rank) = ((int)w.shape[0], (int)a.shape[0]);
        var xs = x.data<double>().ToArray();
        double X(int c, int i, int j) => i < 0 || j < 0 || i >= height || j >= width ? 0 : xs[(c * height + i) * width + j];
        double Correlate(Tensor kernel, int k, int i, int j)
        {
            var sum = 0.0;
            for (int c = 0; c < channels; c++)
                for (int u = 0; u < 3; u++)
                    for (int v = 0; v < 3; v++)
                        sum += kernel[k, c, u, v].item<double>() * X(c, i + u - 1, j + v - 1);
            return sum;
        }
        var result = new double[outputs * height * width];
        for (int o = 0; o < outputs; o++)
            for (int i = 0; i < height; i++)
                for (int j = 0; j < width; j++)
                {
                    var low = 0.0;
                    for (int q = 0; q < rank; q++) low += b[o, q, 0, 0].item<double>() * Correlate(a, q, i, j);
                    result[(o * height + i) * width + j] = bias[o].item<double>() + Correlate(w, o, i, j) + scaling * low;
                }
        return torch.tensor(result, [1, outputs, height, width], ScalarType.Float64);
    }
}
