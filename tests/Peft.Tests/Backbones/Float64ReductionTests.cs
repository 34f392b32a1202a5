using Peft.Backbones.Llama;
using Peft.Backbones.T5;
using Peft.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.Backbones;

/// <summary>
/// Reductions that transformers runs "in float32" stay in float64 for a float64 model, so that a float64 run is an
/// oracle of exactness (the conformance runner's --float64) rather than float32 rounding in disguise.
/// </summary>
public class Float64ReductionTests
{
    private static Tensor Hidden()
    {
        torch.manual_seed(11);
        // Large and nearly constant rows: float32 variance loses digits here that float64 keeps.
        return (torch.randn(2, 3, 48, dtype: ScalarType.Float64) * 1e-3 + 7.0).requires_grad_(false);
    }

    private static Tensor ExactRmsNorm(Tensor x, double eps) => x / (x.pow(2).mean([-1], keepdim: true) + eps).sqrt();

    [Fact]
    public void T5LayerNormStaysInFloat64()
    {
        var norm = new T5LayerNorm(48, 1e-6);
        norm.to(ScalarType.Float64);
        var x = Hidden();
        var output = norm.call(x);
        Assert.Equal(ScalarType.Float64, output.dtype);
        Assert.True((output - ExactRmsNorm(x, 1e-6)).abs().max().item<double>() < 1e-13);
    }

    [Fact]
    public void LlamaRmsNormStaysInFloat64()
    {
        var norm = new LlamaRmsNorm(48, 1e-6);
        norm.to(ScalarType.Float64);
        var x = Hidden();
        var output = norm.call(x);
        Assert.Equal(ScalarType.Float64, output.dtype);
        Assert.True((output - ExactRmsNorm(x, 1e-6)).abs().max().item<double>() < 1e-13);
    }

    [Fact]
    public void HalfPrecisionStillReducesInFloat32()
    {
        Assert.Equal(ScalarType.Float32, Precision.AtLeastFloat32(ScalarType.BFloat16));
        Assert.Equal(ScalarType.Float32, Precision.AtLeastFloat32(ScalarType.Float16));
        Assert.Equal(ScalarType.Float32, Precision.AtLeastFloat32(ScalarType.Float32));
        Assert.Equal(ScalarType.Float64, Precision.AtLeastFloat32(ScalarType.Float64));
    }

    [Fact]
    public void CausalLossOfFloat64LogitsIsFloat64()
    {
        torch.manual_seed(2);
        var logits = torch.randn(1, 4, 10, dtype: ScalarType.Float64) * 20;
        var labels = torch.tensor(new long[] { 3, 1, 7, 2 }, [1, 4]);
        var loss = Losses.CausalLM(logits, labels);
        Assert.Equal(ScalarType.Float64, loss.dtype);
        var logProbabilities = logits[0, ..3].log_softmax(-1);
        var exact = -(logProbabilities[0, 1] + logProbabilities[1, 7] + logProbabilities[2, 2]) / 3;
        Assert.True((loss - exact).abs().item<double>() < 1e-12);
    }
}
