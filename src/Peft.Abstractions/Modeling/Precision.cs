using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Modeling;

/// <summary>
/// The dtype that reductions (norm variances, softmax, losses) run in. transformers writes <c>.to(torch.float32)</c>
/// to protect half-precision inputs; taken literally it also rounds a float64 model down to float32 there, so a
/// float64 run (the conformance runner's <c>--float64</c>, the float32-resolution check of AdamW traces) would carry
/// float32 rounding and could not tell a float32 rounding gap from a real one. Float32 stays float32, so nothing
/// changes for float32 and half-precision models.
/// </summary>
public static class Precision
{
    /// <summary>Float64 for float64, float32 for every other dtype (half precision included).</summary>
    public static ScalarType AtLeastFloat32(ScalarType dtype) => dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;

    /// <summary><paramref name="tensor"/> in <see cref="AtLeastFloat32(ScalarType)"/> of its dtype.</summary>
    public static Tensor AtLeastFloat32(Tensor tensor) => tensor.to(AtLeastFloat32(tensor.dtype));
}
