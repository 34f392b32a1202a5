namespace Peft.Diffusion.Dreambooth;

/// <summary>The loss of each step: the total, and its instance and (with prior preservation) class parts.</summary>
/// <param name="Losses">instance + prior_loss_weight × class, per step.</param>
/// <param name="InstanceLosses">The instance images' mean squared error, per step.</param>
/// <param name="PriorLosses">The class images' mean squared error, per step (empty without prior preservation).</param>
public sealed record DreamboothResult(IReadOnlyList<double> Losses, IReadOnlyList<double> InstanceLosses, IReadOnlyList<double> PriorLosses);
