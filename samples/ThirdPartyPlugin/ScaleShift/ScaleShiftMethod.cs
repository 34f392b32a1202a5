using Peft;
using Peft.Tuners;
using static TorchSharp.torch;

namespace ThirdPartyPlugin.ScaleShift;

/// <summary>
/// SCALE_SHIFT: a learned scale and shift per output channel of each targeted Linear (or GPT-2
/// Conv1D) layer, <c>y = (W·x + b) · scale + shift</c>. It starts as the identity, trains
/// 2 × out_features parameters per layer, and merges into the layer (<c>scale·W</c>, <c>scale·b + shift</c>).
/// Register it with <c>services.AddPeft(p =&gt; p.AddMethod&lt;ScaleShiftMethod&gt;())</c>.
/// </summary>
/// <remarks>
/// Written on <see cref="TunerMethod{TConfig}"/>, which finds the target slots, applies
/// <c>target_modules</c>, <c>exclude_modules</c>, <c>layers_to_transform</c> and
/// <c>modules_to_save</c>, and maps parameters to saved keys
/// (<c>base_model.model.&lt;path&gt;.scale_shift.scale</c>). Without <c>target_modules</c> it targets
/// the architecture's <c>[DefaultTargets("SCALE_SHIFT", ...)]</c>, or its LoRA defaults when it declares none.
/// </remarks>
public sealed class ScaleShiftMethod : TunerMethod<ScaleShiftConfig>
{
    /// <summary>Its own table if an architecture declares one, else LoRA's (as the reference's LoHa, VeRA... copy LoRA's table).</summary>
    protected override IReadOnlyList<string> DefaultTargetsTables => [PeftType.Name, "LORA"];

    /// <inheritdoc />
    public override PeftType PeftType => ScaleShiftConfig.Type;

    /// <inheritdoc />
    public override string ParameterPrefix => "scale_shift";

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor>? CreateLayer(
        nn.Module<Tensor, Tensor> baseLayer, LayerShape shape, ScaleShiftConfig config, string adapterName, string path)
    {
        if (shape.Kind is not (SlotKind.Linear or SlotKind.Conv1D)) return null;   // the template reports it, naming the module
        var layer = new ScaleShiftLayer(baseLayer);
        layer.AddAdapter(adapterName, config.InitWeights);
        return layer;
    }

    /// <inheritdoc />
    protected override bool TryAddToLayer(nn.Module<Tensor, Tensor> existing, ScaleShiftConfig config, string adapterName, string path)
    {
        if (existing is not ScaleShiftLayer layer) return false;
        layer.AddAdapter(adapterName, config.InitWeights);
        return true;
    }
}
