using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Modeling;

/// <summary>Activation functions by their config.json names (<c>hidden_act</c>, <c>activation_function</c>).</summary>
public static class Activations
{
    /// <summary>The function named <paramref name="name"/>, as transformers' ACT2FN defines it.</summary>
    /// <exception cref="ModelConfigActivationException">The name is unknown.</exception>
    public static Func<Tensor, Tensor> Get(string name) => name switch
    {
        "gelu_new" or "gelu_pytorch_tanh" or "gelu_fast" => GeluTanh,
        "gelu" => x => nn.functional.gelu(x),
        "relu" => x => nn.functional.relu(x),
        "silu" or "swish" => x => nn.functional.silu(x),
        "tanh" => x => x.tanh(),
        "quick_gelu" => x => x * torch.sigmoid(1.702 * x),
        _ => throw new ModelConfigActivationException($"Unknown activation function '{name}'."),
    };

    /// <summary>GELU with the tanh approximation, written as transformers' NewGELUActivation computes it.</summary>
    public static Tensor GeluTanh(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        var inner = Math.Sqrt(2.0 / Math.PI) * (x + 0.044715 * x.pow(3.0));
        return (0.5 * x * (1.0 + inner.tanh())).MoveToOuterDisposeScope();
    }
}

/// <summary>An activation name in config.json that no function is known for.</summary>
public sealed class ModelConfigActivationException(string message) : Exception(message);
