using Peft.Methods.Lora;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.Methods;

/// <summary>
/// A float64 LoRA uses its scaling in float64: rsLoRA's α/√r is irrational, and TorchSharp's addmm takes alpha as a
/// float, which would round it to float32 (a relative 1.7e-8 for 16/√8) and make a float64 run inexact.
/// </summary>
public class LoraFloat64ScalingTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AFloat64UpdateUsesTheScalingInFloat64(bool gradients)
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(21);
        var scaling = 16 / Math.Sqrt(8);
        var baseLayer = nn.Linear(24, 40, dtype: ScalarType.Float64);
        foreach (var p in baseLayer.parameters()) p.requires_grad = false;
        var layer = new LoraLayer(baseLayer, fanInFanOut: false);
        layer.AddAdapter("default", 8, scaling, dropout: 0, loraBias: false, LoraInit.Gaussian);
        layer.ActiveAdapters = ["default"];
        layer.to(ScalarType.Float64);
        var parameters = layer.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var (a, b) = (parameters["lora_A.default.weight"], parameters["lora_B.default.weight"]);
        using (torch.no_grad()) b.normal_(0, 0.5);
        var x = torch.randn(3, 7, 24, ScalarType.Float64);

        Tensor output;
        using (var mode = gradients ? torch.enable_grad() : torch.no_grad()) output = layer.call(x);

        using var noGrad = torch.no_grad();
        var update = torch.matmul(torch.matmul(x, a.T), b.T);
        var expected = baseLayer.call(x) + update * scaling;
        var worst = (output - expected).abs().max().item<double>() / update.abs().max().item<double>();
        // Float64 rounding of the same sum is ~1e-16 of it; the scaling rounded to float32 leaves ~1e-8.
        Assert.True(worst < 1e-13, $"largest difference {worst:E2} of the update");
    }
}
