using System.Text.Json;
using Peft.Modeling;
using Peft.Plugins;

namespace Peft.Diffusion.Unet2DCondition;

/// <summary>
/// The plugin for diffusers' <c>UNet2DConditionModel</c>. diffusers' config.json has no <c>model_type</c>, only
/// <c>_class_name</c>: <see cref="ModelType"/> is that class name, and <see cref="DiffusersModels.LoadUnet"/> reads a
/// diffusers folder. A model built here carries this plugin, so <c>GetPeftModel</c> needs no registration; hosted use can
/// still add it with <c>AddBackbone&lt;UNet2DConditionArchitecture&gt;()</c>.
/// </summary>
/// <remarks>
/// As in the reference (PEFT's constants have no table for diffusers' models), there are no default targets:
/// diffusers' LoRA scripts name them (<c>["to_k", "to_q", "to_v", "to_out.0"]</c>).
/// </remarks>
public sealed class UNet2DConditionArchitecture : IArchitecture
{
    /// <summary>The task of a denoiser (not a reference task_type: diffusers' adapters carry none).</summary>
    public static readonly TaskType Denoising = new("DENOISING");

    /// <summary>The instance models built in code carry.</summary>
    public static UNet2DConditionArchitecture Instance { get; } = new();

    /// <inheritdoc />
    public string ModelType => UNet2DConditionConfig.ClassName;

    /// <inheritdoc />
    public IReadOnlyList<TaskType> SupportedTasks { get; } = [Denoising];

    /// <inheritdoc />
    public ModelConfig ParseConfig(JsonElement json, string source) => ModelConfigs.Parse<UNet2DConditionConfig>(json, source);

    /// <inheritdoc />
    public PreTrainedModel Build(ModelConfig config, TaskType task)
    {
        if (task != Denoising) throw new NotSupportedException($"The UNet has no head for {task}; supported: {Denoising}.");
        return new UNet2DConditionModel((UNet2DConditionConfig)config);
    }
}
