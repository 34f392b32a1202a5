using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;

namespace Peft.Training;

/// <summary>What <see cref="Trainer"/> trains: a forward pass, the parameters that learn, and how to checkpoint them.</summary>
public interface ITrainable
{
    /// <summary>The model forward() runs.</summary>
    torch.nn.Module<ModelInputs, ModelOutputs> Module { get; }

    /// <summary>The parameters the optimizer updates.</summary>
    IReadOnlyList<Parameter> TrainableParameters { get; }

    /// <summary>Writes the learnable state to <paramref name="directory"/>.</summary>
    void SaveCheckpoint(string directory);

    /// <summary>Reads the learnable state back from <paramref name="directory"/>.</summary>
    void LoadCheckpoint(string directory);

    /// <summary>Called after each optimizer step, before the gradients are zeroed (AdaLoRA's rank allocation); nothing by default.</summary>
    /// <param name="globalStep">The zero-based step just taken.</param>
    void AfterOptimizerStep(int globalStep)
    {
    }
}
