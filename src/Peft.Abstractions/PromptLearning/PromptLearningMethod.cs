using System.Text.Json;
using Peft.Modeling;
using Peft.Plugins;
using Peft.Tuners;
using TorchSharp;

namespace Peft.PromptLearning;

/// <summary>
/// Template for prompt-learning methods (prompt tuning, P-tuning, prefix tuning). <see cref="Attach"/>
/// fills the config's sizes from the model's <see cref="PromptLayout"/>, checks that they fit, builds
/// the method's <see cref="PromptEncoder"/> and makes classification heads trainable as
/// modules_to_save. The rest is shared: <see cref="PromptLearningAdapter"/> rewrites the inputs.
/// </summary>
/// <remarks>
/// A new method overrides <see cref="PeftType"/> and <see cref="CreateEncoder"/>, and derives its
/// config from <see cref="PromptLearningConfig"/> (overriding <see cref="PromptLearningConfig.Kind"/>
/// for prefixes). It uses nothing of an architecture but <see cref="PreTrainedModel.PromptLayout"/>
/// and <see cref="PreTrainedModel.InputEmbeddings"/>, so every architecture that declares them gets it.
/// </remarks>
public abstract class PromptLearningMethod<TConfig> : IPeftMethod where TConfig : PromptLearningConfig
{
    /// <inheritdoc />
    public abstract PeftType PeftType { get; }

    /// <summary>Builds the encoder for a config already filled by <see cref="PromptLearningConfig.ForModel"/>.</summary>
    /// <param name="config">The resolved config.</param>
    /// <param name="model">The model (for initialising from its word embeddings).</param>
    /// <exception cref="PeftConfigException">The config cannot be used with this model.</exception>
    protected abstract PromptEncoder CreateEncoder(TConfig config, PreTrainedModel model);

    /// <inheritdoc />
    public PeftConfig ParseConfig(JsonElement json, string source) => PeftConfig.Parse<TConfig>(json, source);

    /// <inheritdoc />
    public IAdapter Attach(AdapterTarget target, PeftConfig config, string adapterName)
    {
        if (config is not TConfig typed) throw new PeftConfigException($"{PeftType} cannot use a {config.GetType().Name}.");
        typed.Validate();
        var model = target.Model;
        var modelType = target.Architecture.ModelType;
        var layout = model.PromptLayout
            ?? throw new PeftConfigException($"The {modelType} architecture does not declare a PromptLayout, which {PeftType} needs.");
        var task = typed.TaskType ?? model.Task;
        if (task != model.Task)
        {
            throw new PeftConfigException($"task_type {task} does not match the model, which was built for {model.Task}.");
        }

        var extraModules = task.HeadModulesToSave;
        var modulesToSave = typed.ModulesToSave is null && extraModules.Count == 0
            ? null
            : (typed.ModulesToSave ?? []).Concat(extraModules.Except(typed.ModulesToSave ?? [])).ToList();
        var resolved = (TConfig)(typed.ForModel(layout, task) with { ModulesToSave = modulesToSave });
        resolved.ValidateFor(layout, task, modelType);

        var encoder = CreateEncoder(resolved, model);
        var saved = WrapModulesToSave(model, modulesToSave ?? [], adapterName);
        return new PromptLearningAdapter(model, adapterName, resolved, encoder, layout, saved);
    }

    private static List<(string Path, ModulesToSaveWrapper Wrapper)> WrapModulesToSave(PreTrainedModel model, IReadOnlyList<string> names, string adapterName) =>
        ModulesToSave.Wrap(ModuleSlot.All(model).Where(s => names.Any(n => s.Path == n || s.Path.EndsWith("." + n, StringComparison.Ordinal))).ToList(), adapterName);
}
