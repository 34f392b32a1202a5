using Peft.Modeling;
using Peft.Serving;
using Peft.Tests.Checkpoints;
using TorchSharp;

namespace Peft.Tests.Serving;

/// <summary>Adapters loaded on first use, pinned while used, evicted least recently used first, their memory reported.</summary>
public sealed class AdapterResidencyTests : IDisposable
{
    private readonly ScratchDirectory _scratch = new();
    private readonly string[] _directories;
    private readonly Dictionary<string, float[]> _expected = [];
    private static readonly long[] Prompt = [5, 17, 42, 9];

    public AdapterResidencyTests()
    {
        // Three saved adapters (a, b, c of PerRowAdapterTests) and their single-row logits.
        var source = PerRowAdapterTests.ThreeLoras();
        source.SavePretrained(_scratch.Path);
        _directories = [.. new[] { "a", "b", "c" }.Select(n => Path.Combine(_scratch.Path, n))];
        using var scope = torch.NewDisposeScope();
        var ids = torch.tensor(Prompt, [1, 4]);
        foreach (var name in new[] { "a", "b", "c", PeftModel.BaseModelName }) _expected[name] = PerRowAdapterTests.Alone(source, ids, name)[0].data<float>().ToArray();
    }

    public void Dispose() => _scratch.Dispose();

    /// <summary>A served model that starts with adapter a only, and b and c registered as x and y.</summary>
    private AdapterResidency Serving(int maxResident)
    {
        var model = PeftModels.Default.LoadPretrained(Fixtures.Path("models", "gpt2-clm"), TaskType.CausalLM);
        var peft = PeftModels.Default.FromPretrained(model, _directories[0], "a");
        var residency = new AdapterResidency(peft, maxResident);
        residency.Register("x", _directories[1]);
        residency.Register("y", _directories[2]);
        return residency;
    }

    private float[] Logits(AdapterResidency residency, string adapter, string expectedAs)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var got = residency.Model.Forward(new ModelInputs { InputIds = torch.tensor(Prompt, [1, 4]) }, [adapter]).Logits[0].data<float>().ToArray();
        var gap = got.Zip(_expected[expectedAs], (g, w) => Math.Abs(g - w)).Max();
        Assert.True(gap < 1e-5, $"{adapter}: off by {gap}");
        return got;
    }

    [Fact]
    public async Task Adapters_load_on_first_use_and_the_least_recently_used_goes_first()
    {
        var residency = Serving(maxResident: 2);
        Assert.Equal(["a"], residency.Resident.Select(r => r.Name));

        using (await residency.AcquireAsync(["x"])) Logits(residency, "x", "b");
        Assert.Equal(["x", "a"], residency.Resident.Select(r => r.Name));

        using (await residency.AcquireAsync(["y"])) Logits(residency, "y", "c");   // x (least recently used) makes room; a came with the model
        Assert.Equal(["y", "a"], residency.Resident.Select(r => r.Name));
        Assert.DoesNotContain("x", residency.Model.Adapters.Keys);

        using (await residency.AcquireAsync(["x", PeftModel.BaseModelName])) Logits(residency, "x", "b");   // back from its directory, same numbers
        Logits(residency, PeftModel.BaseModelName, PeftModel.BaseModelName);
        Assert.Equal(["a", "x", "y"], residency.Known);
    }

    [Fact]
    public async Task A_pinned_adapter_is_never_evicted_and_a_full_cache_says_so()
    {
        var residency = Serving(maxResident: 2);
        using var lease = await residency.AcquireAsync(["x"]);

        await Assert.ThrowsAsync<AdapterCapacityException>(() => residency.AcquireAsync(["y"]));
        Assert.Throws<InvalidOperationException>(() => residency.Unload("x"));
        Assert.Throws<InvalidOperationException>(() => residency.Unload("a"));
        await Assert.ThrowsAsync<KeyNotFoundException>(() => residency.AcquireAsync(["nope"]));
        Logits(residency, "x", "b");

        lease.Dispose();
        residency.Unload("x");
        Assert.Equal(["a"], residency.Resident.Select(r => r.Name));
    }

    [Fact]
    public async Task Memory_is_the_adapters_weight_bytes()
    {
        var residency = Serving(maxResident: 3);
        using var lease = await residency.AcquireAsync(["x", "y"]);
        var peft = residency.Model;
        // Each adapter's parameters are float32 and named after it (lora_A.x.weight, lora_embedding_A.x, ...).
        foreach (var adapter in new[] { "a", "x", "y" })
        {
            var own = peft.named_parameters().Where(p => p.name.EndsWith($".{adapter}", StringComparison.Ordinal) || p.name.Contains($".{adapter}.", StringComparison.Ordinal));
            Assert.Equal(own.Sum(p => p.parameter.numel() * 4), residency.Resident.Single(r => r.Name == adapter).Bytes);
        }
        Assert.Equal(residency.Resident.Sum(r => r.Bytes), residency.ResidentBytes);
    }

    [Fact]
    public async Task Requests_keep_getting_the_right_output_while_adapters_come_and_go()
    {
        var residency = Serving(maxResident: 2);
        string[] names = ["a", "x", "y", PeftModel.BaseModelName];
        var expectedAs = new Dictionary<string, string> { ["a"] = "a", ["x"] = "b", ["y"] = "c", [PeftModel.BaseModelName] = PeftModel.BaseModelName };
        var served = 0;
        var capacityRefusals = 0;
        var workers = Enumerable.Range(0, 4).Select(worker => Task.Run(async () =>
        {
            var random = new Random(worker);
            for (int i = 0; i < 12; i++)
            {
                var name = names[random.Next(names.Length)];
                try
                {
                    using var lease = await residency.AcquireAsync([name]);
                    Logits(residency, name, expectedAs[name]);
                    Interlocked.Increment(ref served);
                }
                catch (AdapterCapacityException)
                {
                    Interlocked.Increment(ref capacityRefusals);   // both slots pinned by other workers: a server answers 503
                }
            }
        })).ToList();

        await Task.WhenAll(workers);

        Assert.Equal(48, served + capacityRefusals);
        Assert.True(served > 24, $"only {served} of 48 served");
        Assert.True(residency.Resident.Count <= 2);
    }
}
