using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Modeling;

/// <summary>How an architecture computes attention (transformers' <c>attn_implementation</c>).</summary>
public enum AttentionImplementation
{
    /// <summary>
    /// <see cref="Sdpa"/>, except for float32 on the CPU, where <see cref="Eager"/> keeps the reference's rounding: there
    /// the fused kernel's different summation order moved one ill-conditioned conformance case (gpt2-clm-adalora, whose
    /// random A, E and B dominate the scores) past its float32 bound, while every other case passed either way.
    /// </summary>
    Auto,

    /// <summary>
    /// libtorch's fused <c>scaled_dot_product_attention</c>: no (B, H, T, S) scores and probabilities kept for backward,
    /// a blocked kernel on the CPU. Every architecture with attention uses it but DeBERTa (v1 and v2), which refuses this
    /// value (docs/PERFORMANCE.md, "Attention: scaled_dot_product_attention", says why).
    /// </summary>
    Sdpa,

    /// <summary>The explicit scores → softmax → dropout → weighted sum, each step a tensor (the reference's "eager").</summary>
    Eager,
}

/// <summary>The fused attention call the architectures share.</summary>
public static class FusedAttention
{
    /// <summary>Whether <paramref name="implementation"/> asks for the fused kernel for <paramref name="query"/> (see <see cref="AttentionImplementation.Auto"/>).</summary>
    /// <param name="implementation">The model's choice.</param>
    /// <param name="query">The query, whose dtype and device <see cref="AttentionImplementation.Auto"/> decides by.</param>
    public static bool Use(AttentionImplementation implementation, Tensor query) => implementation switch
    {
        AttentionImplementation.Sdpa => true,
        AttentionImplementation.Eager => false,
        _ => query.dtype != ScalarType.Float32 || query.device_type != DeviceType.CPU,
    };

    /// <summary>
    /// <c>softmax(q·kᵀ·scale + mask)·v</c>, dropout <paramref name="dropout"/> on the probabilities in training,
    /// through <c>scaled_dot_product_attention</c>.
    /// </summary>
    /// <param name="query">(B, H, T, D).</param>
    /// <param name="key">(B, H, S, D): key/value heads already repeated to the query heads.</param>
    /// <param name="value">(B, H, S, D).</param>
    /// <param name="mask">Additive, broadcastable to (B, H, T, S), or null.</param>
    /// <param name="scale">The factor of the scores. libtorch's binding has no scale argument and uses 1/√D, so
    /// another scale is folded into the query (one multiply of a (B, H, T, D) tensor).</param>
    /// <param name="dropout">Dropout probability on the attention weights, applied only when <paramref name="training"/>.</param>
    /// <param name="training">Whether the module is in training mode.</param>
    /// <param name="inFloat32">Compute in float32 and return the value's dtype: the architectures whose reference upcasts
    /// query and key before the product (GPT-Neo, GPT-J) keep their scores out of half precision this way.</param>
    public static Tensor Compute(Tensor query, Tensor key, Tensor value, Tensor? mask, double scale, double dropout, bool training, bool inFloat32 = false)
    {
        var dtype = value.dtype;
        if (inFloat32 && dtype != ScalarType.Float32)
        {
            (query, key, value) = (query.to(ScalarType.Float32), key.to(ScalarType.Float32), value.to(ScalarType.Float32));
        }
        var standard = 1.0 / Math.Sqrt(query.shape[^1]);
        // head_dim^-0.5 and 1/√head_dim may differ in the last bit of a double, which no float32 or half product sees.
        var q = Math.Abs(scale / standard - 1) < 1e-12 ? query : query * (scale / standard);
        var m = mask is null || mask.dtype == query.dtype ? mask : mask.to(query.dtype);
        var output = nn.functional.scaled_dot_product_attention(q, key, value, m, training ? dropout : 0);
        return output.dtype == dtype ? output : output.to(dtype);
    }
}
