using System.Text.Json;
using Peft.Modeling;

namespace Peft.Plugins;

/// <summary>
/// A PEFT method plugin: reads its config, attaches an adapter to a model, and maps the adapter's
/// state to the keys Hugging Face PEFT saves.
/// </summary>
/// <remarks>
/// Register one with <c>services.AddPeft().AddMethod&lt;T&gt;()</c>. Methods that replace layers
/// derive from <see cref="Tuners.TunerMethod{TConfig}"/> (LoRA is the worked example).
/// </remarks>
public interface IPeftMethod
{
    /// <summary>The <c>peft_type</c> this plugin owns.</summary>
    PeftType PeftType { get; }

    /// <summary>Reads this method's config from a parsed adapter_config.json.</summary>
    /// <param name="json">The whole adapter_config.json document.</param>
    /// <param name="source">The file it came from, for error messages.</param>
    PeftConfig ParseConfig(JsonElement json, string source);

    /// <summary>Attaches a new adapter named <paramref name="adapterName"/> to <paramref name="target"/>.</summary>
    /// <exception cref="PeftConfigException">The config does not fit the model (e.g. target_modules match nothing).</exception>
    IAdapter Attach(AdapterTarget target, PeftConfig config, string adapterName);
}

/// <summary>The model an adapter is attached to, with what its architecture declares.</summary>
/// <param name="Model">The model being adapted.</param>
/// <param name="Architecture">The plugin that built it.</param>
public sealed record AdapterTarget(PreTrainedModel Model, IArchitecture Architecture);

/// <summary>
/// An adapter attached to a model. Tuner adapters live inside the model's layers; prompt-learning
/// adapters own modules outside it (<see cref="OwnedModule"/>) and rewrite the inputs.
/// </summary>
public interface IAdapter
{
    /// <summary>The adapter's name (<c>"default"</c> unless given).</summary>
    string Name { get; }

    /// <summary>Its config, with target_modules expanded as it was applied.</summary>
    PeftConfig Config { get; }

    /// <summary>
    /// Modules the adapter owns outside the model, registered under <c>prompt_encoder.&lt;name&gt;</c>
    /// (prompt learning); null for adapters that live in the model's layers.
    /// </summary>
    TorchSharp.torch.nn.Module? OwnedModule { get; }

    /// <summary>
    /// Makes the adapter take part in forward passes, or not. Adapters are attached inactive; the
    /// model's <c>SetAdapter</c> asks each adapter in turn. Adapters the model applies itself
    /// (prompt learning, whose <see cref="PrepareInputs"/> the model calls for the active adapter only) need nothing.
    /// </summary>
    void SetActive(bool active)
    {
    }

    /// <summary>
    /// Takes the adapter's weights out of the model's layers (delete_adapter); the model drops the
    /// adapter and any <see cref="OwnedModule"/> itself. Adapters that live outside the layers need nothing.
    /// </summary>
    void Remove()
    {
    }

    /// <summary>Rewrites the inputs of a forward pass (prompt learning); identity for tuners.</summary>
    ModelInputs PrepareInputs(ModelInputs inputs);

    /// <summary>
    /// Adjusts the outputs of every forward pass through the model, disabled or not (as the
    /// reference's AdaLoRA adds its orthogonality regulariser to the loss); identity by default.
    /// </summary>
    ModelOutputs CompleteOutputs(ModelOutputs outputs) => outputs;

    /// <summary>
    /// Called by the training loop after each optimizer step, before the gradients are zeroed, with
    /// the zero-based step (the reference's <c>update_and_allocate(global_step)</c>: AdaLoRA's rank
    /// allocator). Nothing by default.
    /// </summary>
    /// <param name="globalStep">Optimizer steps taken before this one.</param>
    void AfterOptimizerStep(int globalStep)
    {
    }

    /// <summary>Sets requires_grad on the adapter's parameters (and nothing else of the model).</summary>
    void MarkTrainable();

    /// <summary>The adapter's state under the keys Hugging Face PEFT saves (adapter name removed).</summary>
    IReadOnlyDictionary<string, TorchSharp.torch.Tensor> GetStateDict();

    /// <summary>Loads a saved state; every adapter key must be present and fit, else an exception names it.</summary>
    /// <param name="state">Tensors by saved key.</param>
    /// <param name="source">The file they came from, for error messages.</param>
    void LoadStateDict(IReadOnlyDictionary<string, TorchSharp.torch.Tensor> state, string source);

    /// <summary>Whether <see cref="IMergeable"/> operations apply.</summary>
    bool CanMerge { get; }

    /// <summary>Turns the adapter off (forward runs the base model) or back on.</summary>
    bool Disabled { get; set; }
}

/// <summary>An adapter whose effect can be folded into the base weights.</summary>
public interface IMergeable
{
    /// <summary>Adds the adapter's deltas into the base weights.</summary>
    void Merge();

    /// <summary>
    /// <see cref="Merge()"/>; with <paramref name="safeMerge"/> (the reference's <c>safe_merge=True</c>) every merged
    /// weight is checked first and a non-finite one refused with <see cref="Tuners.NonFiniteMergeException"/>, its layer
    /// untouched (layers merged before it stay merged, so the model still computes what the adapted one did).
    /// </summary>
    void Merge(bool safeMerge);

    /// <summary>Subtracts them again.</summary>
    void Unmerge();

    /// <summary>Removes the adapter layers, leaving the base layers (merged first when <paramref name="merge"/>).</summary>
    void Unload(bool merge);
}
