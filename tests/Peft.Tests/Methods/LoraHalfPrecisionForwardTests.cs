using Peft.Layers;
using Peft.Methods.Lora;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.Methods;

/// <summary>
/// An unmerged float32 LoRA over a bf16 base layer (the reference's <c>autocast_adapter_dtype=True</c>): the update is
/// computed in float32, added to the base output in float32 and the sum rounded to bf16 once, as the reference's
/// <c>(result + lora_B(lora_A(x.float())) * scaling).to(bf16)</c> does.
/// </summary>
public class LoraHalfPrecisionForwardTests
{
    private const int In = 24, Out = 40, Rank = 4;
    private const double Scaling = 1.5;

    public static TheoryData<string, bool> Cases() => new()
    {
        { "linear", false }, { "linear", true }, { "conv1d", false }, { "conv1d", true },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void TheBf16OutputIsTheBaseOutputPlusTheFloat32UpdateRoundedOnce(string kind, bool gradients)
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(11);
        var (layer, baseLayer) = Bf16Layer(kind);
        var (a, b) = Factors(layer);
        var x = torch.randn(3, 7, In).to(ScalarType.BFloat16);

        using var grad = gradients ? torch.enable_grad() : torch.no_grad();
        var output = layer.call(x);
        Assert.Equal(ScalarType.BFloat16, output.dtype);
        Assert.Equal(new long[] { 3, 7, Out }, output.shape);

        using var noGrad = torch.no_grad();
        var baseOutput = baseLayer.call(x);
        var update = torch.matmul(torch.matmul(x.to(ScalarType.Float32), a.T), b.T) * Scaling;
        var expected = (baseOutput.to(ScalarType.Float32) + update).to(ScalarType.BFloat16);
        // The update is not lost to rounding: it moves most outputs by more than a bf16 step.
        Assert.True((expected != baseOutput).to(ScalarType.Float32).mean().item<float>() > 0.9f);
        // One rounding of the same float32 sum: equal up to float32's order of operations, i.e. at most one bf16 step.
        var step = Bf16Step(expected);
        var difference = (output.to(ScalarType.Float32) - expected.to(ScalarType.Float32)).abs();
        Assert.True((difference <= step).all().item<bool>(), $"largest difference {difference.max().item<float>()}");
        Assert.True((difference == 0).to(ScalarType.Float32).mean().item<float>() > 0.95f);
    }

    [Theory]
    [InlineData("linear")]
    [InlineData("conv1d")]
    public void Float32AdaptersOverABf16BaseGetFloat32GradientsOfTheFloat32Update(string kind)
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(12);
        var (layer, _) = Bf16Layer(kind);
        var (a, b) = Factors(layer);
        var x = torch.randn(3, 7, In).to(ScalarType.BFloat16);
        var g = torch.randn(3, 7, Out);

        using var grad = torch.enable_grad();
        layer.call(x).to(ScalarType.Float32).backward([g]);
        Assert.Equal(ScalarType.Float32, a.grad!.dtype);

        // By hand: the upstream gradient reaches the float32 sum through the layer's bf16 output (so rounded to bf16, as
        // in the reference); from there B's and A's gradients are plain float32 products.
        var xf = x.to(ScalarType.Float32).reshape(-1, In);
        var gf = g.to(ScalarType.BFloat16).to(ScalarType.Float32).reshape(-1, Out);
        var h = torch.matmul(xf, a.detach().T);
        var expectedB = torch.matmul(gf.T, h) * Scaling;
        var expectedA = torch.matmul(torch.matmul(gf, b.detach()).T, xf) * Scaling;
        AssertClose(expectedB, b.grad!);
        AssertClose(expectedA, a.grad!);
    }

    private static void AssertClose(Tensor expected, Tensor actual)
    {
        var scale = expected.abs().max().item<float>();
        var worst = (expected - actual).abs().max().item<float>();
        Assert.True(worst <= 1e-5 * scale, $"largest difference {worst} (scale {scale})");
    }

    private static (LoraLayer Layer, nn.Module<Tensor, Tensor> Base) Bf16Layer(string kind)
    {
        nn.Module<Tensor, Tensor> baseLayer = kind == "linear" ? nn.Linear(In, Out) : new Conv1D(In, Out);
        if (baseLayer is Conv1D conv) using (torch.no_grad()) conv.bias.normal_();
        baseLayer.to(ScalarType.BFloat16);
        foreach (var p in baseLayer.parameters()) p.requires_grad = false;
        var layer = new LoraLayer(baseLayer, fanInFanOut: kind == "conv1d");
        layer.AddAdapter("default", Rank, Scaling, dropout: 0, loraBias: false, LoraInit.Gaussian);
        layer.ActiveAdapters = ["default"];
        var (_, b) = Factors(layer);
        using (torch.no_grad()) b.normal_(0, 0.5);
        return (layer, baseLayer);
    }

    private static (Tensor A, Tensor B) Factors(LoraLayer layer)
    {
        var parameters = layer.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var (a, b) = (parameters["lora_A.default.weight"], parameters["lora_B.default.weight"]);
        Assert.Equal(ScalarType.Float32, a.dtype);
        return (a, b);
    }

    /// <summary>The distance from each bf16 value to the next one away from zero (8 significant bits).</summary>
    private static Tensor Bf16Step(Tensor values)
    {
        var magnitude = values.to(ScalarType.Float32).abs().clamp_min(1e-30);
        return torch.pow(2, torch.floor(torch.log2(magnitude)) - 7);
    }
}
