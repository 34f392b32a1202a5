// LoRA for embeddings, following peft/tuners/lora/layer.py (class Embedding).
using Peft.Tuners;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Methods.Lora;

/// <summary>
/// Adds <c>embedding(x, Aᵀ) · Bᵀ · scaling</c> to an embedding's output. Parameter names match the
/// reference: <c>lora_embedding_A.&lt;adapter&gt;</c> (r, vocab) and <c>lora_embedding_B.&lt;adapter&gt;</c> (dim, r).
/// </summary>
public sealed class LoraEmbedding : AdapterLayer, IRowRoutedLayer, ILoraFactors
{
    private readonly ParameterDict lora_embedding_A = new();
    private readonly ParameterDict lora_embedding_B = new();
    private readonly Dictionary<string, double> _scaling = [];
    private readonly long? _paddingIndex;

    /// <summary>Wraps <paramref name="baseLayer"/>.</summary>
    public LoraEmbedding(nn.Module<Tensor, Tensor> baseLayer) : base("LoraEmbedding", baseLayer)
    {
        _paddingIndex = baseLayer is Embedding embedding ? Layers.Embeddings.PaddingIndexOf(embedding) : null;
        RegisterComponents();
    }

    /// <inheritdoc />
    public override IReadOnlyCollection<string> AdapterNames => _scaling.Keys;

    /// <summary>Adds adapter <paramref name="name"/> of rank <paramref name="rank"/>.</summary>
    public void AddAdapter(string name, int rank, double scaling, LoraInit init)
    {
        var weight = BaseWeight;
        var a = torch.randn(rank, Shape.InFeatures, dtype: AdapterDType, device: weight.device);
        var b = torch.randn(Shape.OutFeatures, rank, dtype: AdapterDType, device: weight.device);
        if (init != LoraInit.Random)
        {
            // The reference starts embeddings the other way round from linear layers: A zeros, B normal.
            a.zero_();
            b.normal_();
        }
        lora_embedding_A.Add((name, new Parameter(a)));
        lora_embedding_B.Add((name, new Parameter(b)));
        _scaling[name] = scaling;
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        if (AdapterRouting.Current is { } routing) return RoutedForward(input, routing);
        var result = base_layer.call(input);
        if (BaseOnly) return result;
        using var scope = torch.NewDisposeScope();
        var dtype = result.dtype;
        foreach (var name in ActiveAdapters)
        {
            if (MergedAdapters.Contains(name)) continue;
            var afterA = Lookup(lora_embedding_A[name].T, input);
            result = result + torch.matmul(afterA, lora_embedding_B[name].T) * _scaling[name];
        }
        // The sum is in the adapter's (wider) dtype; hand the embedding's dtype on, as the reference does.
        return result.to(dtype).MoveToOuterDisposeScope();
    }

    /// <summary>Per-row adapters: the embedding is looked up once, each adapter's rows get its update (see LoraLayer.Routing.cs).</summary>
    private Tensor RoutedForward(Tensor input, AdapterRouting routing)
    {
        routing.CheckRows(input, nameof(LoraEmbedding));
        if (MergedAdapters.Count > 0) throw new InvalidOperationException(((IRowRoutedLayer)this).RoutingBlocker(MergedAdapters[0]));
        var result = base_layer.call(input);
        using var scope = torch.NewDisposeScope();
        var dtype = result.dtype;
        foreach (var group in routing.Groups)
        {
            if (!_scaling.TryGetValue(group.Adapter, out var scaling)) continue;
            var index = group.Rows.Count == routing.Rows ? null : routing.IndexOf(group, input.device);
            var afterA = Lookup(lora_embedding_A[group.Adapter].T, index is null ? input : input.index_select(0, index));
            var update = torch.matmul(afterA, lora_embedding_B[group.Adapter].T);
            result = index is null ? result + update * scaling : result.to(update.dtype).index_add(0, index, update, scaling);
        }
        return result.to(dtype).MoveToOuterDisposeScope();
    }

    /// <summary>Rows of <paramref name="table"/> for each id, with no gradient reaching the padding row (as F.embedding with padding_idx).</summary>
    private Tensor Lookup(Tensor table, Tensor ids)
    {
        var rows = table.index_select(0, ids.reshape(-1)).reshape([.. ids.shape, table.shape[1]]);
        if (_paddingIndex is not { } pad) return rows;
        return torch.where(ids.eq(pad).unsqueeze(-1), rows.detach(), rows);
    }

    /// <inheritdoc />
    protected override Tensor Delta(string adapterName) =>
        torch.matmul(lora_embedding_B[adapterName], lora_embedding_A[adapterName]).T * _scaling[adapterName]; // (vocab, dim)

    Tensor ILoraFactors.FactorA(string adapterName) => lora_embedding_A[adapterName];

    Tensor ILoraFactors.FactorB(string adapterName) => lora_embedding_B[adapterName];

    double ILoraFactors.ScalingOf(string adapterName) => _scaling[adapterName];

    string? ILoraFactors.ProductBlocker => null;

    /// <inheritdoc />
    public override void DeleteAdapter(string adapterName)
    {
        if (!_scaling.Remove(adapterName)) return;
        lora_embedding_A.Remove(adapterName);
        lora_embedding_B.Remove(adapterName);
        ActiveAdapters = ActiveAdapters.Where(a => a != adapterName).ToArray();
    }
}
