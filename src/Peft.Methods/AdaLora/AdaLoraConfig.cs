using System.Text.Json.Serialization;
using Peft.Tuners;

namespace Peft.Methods.AdaLora;

/// <summary>
/// AdaLoRA's adapter_config.json (the reference's <c>AdaLoraConfig</c>, a LoraConfig with a rank
/// budget). Training has three phases: <see cref="TInit"/> warm-up steps at the full budget, a
/// cubic decrease of the budget to <see cref="TargetR"/> per layer until
/// <c>total_step − tfinal</c>, then <see cref="TFinal"/> steps with the final ranks fixed.
/// </summary>
public sealed record AdaLoraConfig : TunerConfig
{
    /// <summary>The method's <c>peft_type</c>.</summary>
    public static readonly PeftType Type = new("ADALORA");

    /// <inheritdoc />
    public override PeftType PeftType => Type;

    /// <summary>LoRA's rank field; unused by AdaLoRA (the reference warns when it is not 8): the rank starts at <see cref="InitR"/>.</summary>
    [JsonPropertyName("r")]
    public int R { get; init; } = 8;

    /// <summary>The initial rank of every adapted matrix.</summary>
    [JsonPropertyName("init_r")]
    public int InitR { get; init; } = 12;

    /// <summary>The average rank the budget ends at.</summary>
    [JsonPropertyName("target_r")]
    public int TargetR { get; init; } = 8;

    /// <summary>Warm-up steps before the budget starts to fall.</summary>
    [JsonPropertyName("tinit")]
    public int TInit { get; init; }

    /// <summary>Final steps with the ranks fixed.</summary>
    [JsonPropertyName("tfinal")]
    public int TFinal { get; init; }

    /// <summary>Steps between two budget allocations.</summary>
    [JsonPropertyName("deltaT")]
    public int DeltaT { get; init; } = 1;

    /// <summary>EMA coefficient of the smoothed sensitivity.</summary>
    [JsonPropertyName("beta1")]
    public double Beta1 { get; init; } = 0.85;

    /// <summary>EMA coefficient of the uncertainty.</summary>
    [JsonPropertyName("beta2")]
    public double Beta2 { get; init; } = 0.85;

    /// <summary>Weight of the orthogonality regulariser added to the loss.</summary>
    [JsonPropertyName("orth_reg_weight")]
    public double OrthRegWeight { get; init; } = 0.5;

    /// <summary>The number of training steps the schedule spans (required).</summary>
    [JsonPropertyName("total_step")]
    public int? TotalStep { get; init; }

    /// <summary>
    /// Which singular triplets each layer keeps, by <c>&lt;module&gt;.lora_E</c>: what the rank allocator
    /// decided, saved with the adapter; loading resizes each layer to the triplets kept.
    /// </summary>
    [JsonPropertyName("rank_pattern")]
    public IReadOnlyDictionary<string, IReadOnlyList<bool>>? RankPattern { get; init; }

    /// <summary>Scale numerator: the update is multiplied by lora_alpha / ranknum.</summary>
    [JsonPropertyName("lora_alpha")]
    public double LoraAlpha { get; init; } = 8;

    /// <summary>Dropout on the adapter's input.</summary>
    [JsonPropertyName("lora_dropout")]
    public double LoraDropout { get; init; }

    /// <summary>Informational: the layout follows the layer (Conv1D stores (in, out), Linear (out, in)), as the reference corrects it.</summary>
    [JsonPropertyName("fan_in_fan_out")]
    public bool FanInFanOut { get; init; }

    /// <summary>Which biases train: only "none" is supported.</summary>
    [JsonPropertyName("bias")]
    public string Bias { get; init; } = "none";

    /// <summary>True: E zeros, A and B normal with std 0.02 (the update starts at zero); false: all standard normal.</summary>
    [JsonPropertyName("init_lora_weights")]
    public bool InitLoraWeights { get; init; } = true;

    /// <summary>Not supported by AdaLoRA (the reference refuses it too).</summary>
    [JsonPropertyName("use_dora")]
    public bool UseDora { get; init; }

    /// <summary>Not supported by AdaLoRA here.</summary>
    [JsonPropertyName("use_rslora")]
    public bool UseRsLora { get; init; }

    /// <summary>Not supported by AdaLoRA here.</summary>
    [JsonPropertyName("lora_bias")]
    public bool LoraBias { get; init; }

    /// <summary>The step at which the ranks are fixed: <c>total_step − tfinal</c>.</summary>
    [JsonIgnore]
    public int FinalStep => (TotalStep ?? 0) - TFinal;

    /// <inheritdoc />
    /// <remarks>
    /// Without a rank_pattern every layer saves init_r rows; with one the saved tensors are cut to the kept ranks, and
    /// the pattern's lists (init_r entries each, in the file itself) bound it.
    /// </remarks>
    protected override IEnumerable<ConfigSize> DeclaredSizes() =>
        RankPattern is { Count: > 0 } ? [] : [new ConfigSize("init_r", InitR, SizeBound.TensorDimension)];

    /// <inheritdoc />
    public override void Validate()
    {
        base.Validate();
        if (UseDora) throw new PeftConfigException("ADALORA does not support DoRA (`use_dora`).");
        if (UseRsLora) throw new PeftConfigException("`use_rslora` is not supported by AdaLoRA here.");
        if (LoraBias) throw new PeftConfigException("`lora_bias` is not supported by AdaLoRA here.");
        if (Bias != "none") throw new PeftConfigException($"`bias` = \"{Bias}\" is not supported yet; use \"none\".");
        if (InitR < 0) throw new PeftConfigException($"`init_r` should be a positive integer or 0, but the value passed is {InitR}.");
        if (TargetR < 0) throw new PeftConfigException($"`target_r` should be a positive integer or 0, but the value passed is {TargetR}.");
        if (TotalStep is not > 0) throw new PeftConfigException("AdaLoRA does not work when `total_step` is None, supply a value > 0.");
        if (OrthRegWeight < 0) throw new PeftConfigException($"`orth_reg_weight` should be greater than or equal to 0, but the value passed is {OrthRegWeight}.");
        if (TInit >= FinalStep)
        {
            throw new PeftConfigException("The supplied schedule values don't allow for a budgeting phase. Decrease `tfinal`/`tinit` or increase `total_step`.");
        }
        if (DeltaT <= 0) throw new PeftConfigException($"`deltaT` must be positive, got {DeltaT}.");
        if (Beta1 is <= 0 or >= 1) throw new PeftConfigException($"`beta1` must be in (0, 1), got {Beta1}.");
        if (Beta2 is <= 0 or >= 1) throw new PeftConfigException($"`beta2` must be in (0, 1), got {Beta2}.");
        if (LoraDropout is < 0 or >= 1) throw new PeftConfigException($"`lora_dropout` must be in [0, 1), got {LoraDropout}.");
    }
}
