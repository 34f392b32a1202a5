using Peft.Checkpoints;
using Peft.Methods.IA3;
using Peft.Methods.Lora;
using Peft.Modeling;
using Peft.Tests.Checkpoints;
using Peft.Tests.Correctness;
using Peft.Tuners;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.Reliability;

/// <summary>Merge(safeMerge: true) as the reference's <c>safe_merge=True</c>; loading a non-finite adapter warns.</summary>
public class SafeMergeTests
{
    private static readonly string Gpt2 = Fixtures.Path("models", "gpt2-clm");
    private const string BrokenLayer = "transformer.h.1.attn.c_attn";

    private static PeftModel Lora()
    {
        torch.manual_seed(7);
        var peft = PeftModels.Default.GetPeftModel(PeftModels.Default.LoadPretrained(Gpt2, TaskType.CausalLM),
            new LoraConfig { TaskType = TaskType.CausalLM, R = 2, TargetModules = TargetModules.FromNames(["c_attn"]) });
        using var noGrad = torch.no_grad();
        foreach (var (_, parameter) in peft.TrainableParameters()) parameter.normal_(0, 0.05);
        return peft;
    }

    private static Tensor BaseWeight(PeftModel peft, string layer) =>
        peft.named_parameters().Single(p => p.name == "base_model.model." + layer + ".base_layer.weight").parameter;

    /// <summary>Finite adapter weights whose product overflows float32: only the merged weight shows it.</summary>
    private static void Overflow(PeftModel peft, string layer)
    {
        using var noGrad = torch.no_grad();
        foreach (var (name, parameter) in peft.TrainableParameters().Where(p => p.Name.Contains(layer + ".lora_", StringComparison.Ordinal))) parameter.fill_(1e30f);
    }

    [Fact]
    public void ASafeMergeRefusesAnOverflowingAdapterNamingItAndLeavesTheLayerUntouched()
    {
        var peft = Lora();
        Overflow(peft, BrokenLayer);
        var before = BaseWeight(peft, BrokenLayer).clone();

        var error = Assert.Throws<NonFiniteMergeException>(() => peft.Merge(safeMerge: true));
        Assert.Equal("default", error.AdapterName);
        Assert.Contains("'default'", error.Message, StringComparison.Ordinal);
        Assert.Contains(BrokenLayer, error.Message, StringComparison.Ordinal);
        Assert.True(before.equal(BaseWeight(peft, BrokenLayer)).all().item<bool>(), "the refused layer's weight changed");
        var layers = ((TunerAdapter)peft.ActiveAdapter).Layers;
        Assert.Empty(layers.Single(l => l.Path == BrokenLayer).Layer.MergedAdapters);
        Assert.Equal(["default"], layers.Single(l => l.Path == "transformer.h.0.attn.c_attn").Layer.MergedAdapters);

        // MergeAndUnload refuses as well, and unloads nothing: the adapter is still there.
        Assert.Throws<NonFiniteMergeException>(() => peft.MergeAndUnload(safeMerge: true));
        Assert.Contains(peft.modules(), m => m is IAdapterLayer);
    }

    [Fact]
    public void APlainMergeRefusesNothing()
    {
        var peft = Lora();
        Overflow(peft, BrokenLayer);
        peft.Merge();
        Assert.False(BaseWeight(peft, BrokenLayer).isfinite().all().item<bool>());
    }

    [Fact]
    public void ASafeMergeOfAFiniteAdapterIsThePlainMergeBitForBit()
    {
        var plain = Lora().MergeAndUnload().state_dict();
        var safe = Lora().MergeAndUnload(safeMerge: true).state_dict();
        Assert.Equal(plain.Keys, safe.Keys);
        foreach (var (key, value) in plain) Assert.True(value.equal(safe[key]).all().item<bool>(), key);

        // Another method's merge (IA3 scales instead of adding) goes through the same check.
        static PeftModel Ia3()
        {
            var peft = PeftModels.Default.GetPeftModel(PeftModels.Default.LoadPretrained(Gpt2, TaskType.CausalLM),
                new IA3Config { TaskType = TaskType.CausalLM, TargetModules = new[] { "c_attn", "c_fc" }, FeedforwardModules = new[] { "c_fc" } });
            using var noGrad = torch.no_grad();
            torch.manual_seed(3);
            foreach (var (_, parameter) in peft.TrainableParameters()) parameter.uniform_(0.5, 1.5);
            return peft;
        }
        var ia3Plain = Ia3().MergeAndUnload().state_dict();
        var ia3Safe = Ia3().MergeAndUnload(safeMerge: true).state_dict();
        foreach (var (key, value) in ia3Plain) Assert.True(value.equal(ia3Safe[key]).all().item<bool>(), key);

        var broken = Ia3();
        using (torch.no_grad()) broken.TrainableParameters().First().Parameter.fill_(float.NaN);
        Assert.Throws<NonFiniteMergeException>(() => broken.Merge(safeMerge: true));
    }

    [Fact]
    public void LoadingAnAdapterWithNaNWarnsNamingTheTensor()
    {
        using var scratch = new ScratchDirectory();
        var peft = Lora();
        var nan = peft.TrainableParameters().First(p => p.Name.Contains(BrokenLayer, StringComparison.Ordinal));
        using (torch.no_grad()) nan.Parameter[0, 0] = float.NaN;
        peft.SavePretrained(scratch.Path);
        var savedName = SafeTensors.Load(Path.Combine(scratch.Path, "adapter_model.safetensors"))
            .Single(p => !p.Value.isfinite().all().item<bool>()).Key;

        using var warnings = new CapturedWarnings();
        var loaded = PeftModels.Default.FromPretrained(PeftModels.Default.LoadPretrained(Gpt2, TaskType.CausalLM), scratch.Path);
        Assert.Contains(warnings.Messages, m => m.Contains($"'{savedName}'", StringComparison.Ordinal) && m.Contains("NaN", StringComparison.Ordinal));
        Assert.Throws<NonFiniteMergeException>(() => loaded.Merge(safeMerge: true));

        using var none = new CapturedWarnings();
        PeftModels.Default.FromPretrained(PeftModels.Default.LoadPretrained(Gpt2, TaskType.CausalLM), Fixtures.Path("cases", "gpt2-clm-lora", "adapter"));
        Assert.DoesNotContain(none.Messages, m => m.Contains("NaN", StringComparison.Ordinal));
    }
}
