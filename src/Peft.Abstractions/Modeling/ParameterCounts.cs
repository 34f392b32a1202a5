using TorchSharp;

namespace Peft.Modeling;

/// <summary>Parameter counts as the reference's get_nb_trainable_parameters gives them.</summary>
public static class ParameterCounts
{
    /// <summary>Trainable and total parameter counts of <paramref name="module"/>, each shared (tied) tensor counted once.</summary>
    public static (long Trainable, long All) Of(torch.nn.Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        long trainable = 0, all = 0;
        var seen = new HashSet<IntPtr>();
        foreach (var parameter in module.parameters())
        {
            if (!seen.Add(parameter.Handle)) continue;
            all += parameter.numel();
            if (parameter.requires_grad) trainable += parameter.numel();
        }
        return (trainable, all);
    }
}
