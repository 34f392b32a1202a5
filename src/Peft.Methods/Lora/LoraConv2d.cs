// LoRA for Conv2d layers, following peft/tuners/lora/layer.py (class Conv2d / _ConvNd).
using Peft.Tuners;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Methods.Lora;

/// <summary>
/// Adds <c>lora_B(lora_A(dropout(x))) · scaling</c> to a Conv2d's output: lora_A is a convolution
/// with the base layer's kernel, stride and padding into <c>r</c> channels, lora_B a 1×1
/// convolution back to the output channels with the base layer's groups. The names match the
/// reference: <c>lora_A.&lt;adapter&gt;.weight</c> (r, in, kh, kw), <c>lora_B.&lt;adapter&gt;.weight</c> (out, r / groups, 1, 1).
/// </summary>
/// <remarks>
/// With groups = 1 the update is the kernel B·A (per kernel position) and merges exactly. With
/// groups &gt; 1 the update mixes every input channel into every output channel, which a grouped
/// kernel cannot hold, so merging is refused as the reference refuses it. lora_A also takes the
/// base layer's dilation and padding mode (the reference leaves them at their defaults, so its
/// adapters on dilated or reflect-padded convolutions do not run or do not merge exactly).
/// </remarks>
public sealed class LoraConv2d : AdapterLayer, ILoraFactors
{
    private readonly AdapterModuleDict<nn.Module<Tensor, Tensor>> lora_dropout = new();
    private readonly AdapterModuleDict<Conv2d> lora_A = new();
    private readonly AdapterModuleDict<Conv2d> lora_B = new();
    private readonly Dictionary<string, double> _scaling = [];

    /// <summary>Wraps <paramref name="baseLayer"/>, a Conv2d.</summary>
    /// <exception cref="ArgumentException">It is not one.</exception>
    public LoraConv2d(nn.Module<Tensor, Tensor> baseLayer) : base(nameof(LoraConv2d), baseLayer)
    {
        if (baseLayer is not Conv2d) throw new ArgumentException($"LoraConv2d wraps a Conv2d, not a {baseLayer.GetType().Name}.", nameof(baseLayer));
        RegisterComponents();
    }

    private Conv2d Base => (Conv2d)base_layer;

    /// <inheritdoc />
    public override IReadOnlyCollection<string> AdapterNames => _scaling.Keys;

    /// <summary>Adds adapter <paramref name="name"/> of rank <paramref name="rank"/>.</summary>
    /// <exception cref="PeftConfigException">The rank is not a multiple of the base layer's groups.</exception>
    public void AddAdapter(string name, int rank, double scaling, double dropout, bool loraBias, LoraInit init, string path)
    {
        var conv = Base;
        if (rank % conv.groups != 0)
        {
            throw new PeftConfigException(
                $"Target module '{path}' is a Conv2d with groups={conv.groups}, and rank {rank} is not a multiple of it; choose another rank (rank_pattern) or leave this module out.");
        }
        var dtype = AdapterDType;
        var device = BaseWeight.device;
        var kernel = (conv.kernel_size[0], conv.kernel_size[1]);
        var stride = (conv.stride[0], conv.stride[1]);
        var dilation = (conv.dilation[0], conv.dilation[1]);
        var a = conv.padding_type is { } same
            ? nn.Conv2d(conv.in_channels, rank, kernel, same, stride, dilation, conv.padding_mode, bias: false, device: device, dtype: dtype)
            : nn.Conv2d(conv.in_channels, rank, kernel, stride, (conv.padding![0], conv.padding[1]), dilation, conv.padding_mode, bias: false, device: device, dtype: dtype);
        var b = nn.Conv2d(rank, conv.out_channels, 1, groups: conv.groups, bias: loraBias, device: device, dtype: dtype);
        using (torch.no_grad())
        {
            switch (init)
            {
                case LoraInit.Default:
                    nn.init.kaiming_uniform_(a.weight!, a: Math.Sqrt(5));
                    nn.init.zeros_(b.weight!);
                    break;
                case LoraInit.Gaussian:
                    nn.init.normal_(a.weight!, std: 1.0 / rank);
                    nn.init.zeros_(b.weight!);
                    break;
            }
            if (b.bias is not null) nn.init.zeros_(b.bias);
        }
        lora_dropout.Add(name, dropout > 0 ? nn.Dropout(dropout) : nn.Identity());
        lora_A.Add(name, a);
        lora_B.Add(name, b);
        _scaling[name] = scaling;
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        var result = base_layer.call(input);
        if (BaseOnly) return result;
        using var scope = torch.NewDisposeScope();
        var dtype = result.dtype;
        foreach (var name in ActiveAdapters)
        {
            if (MergedAdapters.Contains(name)) continue;
            var a = lora_A[name];
            var update = lora_B[name].call(a.call(lora_dropout[name].call(input.to(a.weight!.dtype))));
            result = result.add(update, alpha: _scaling[name]);
        }
        // The sum is in the adapter's (wider) dtype; hand the base layer's dtype on, as the reference does.
        return result.to(dtype).MoveToOuterDisposeScope();
    }

    /// <summary>The kernel delta (out, in, kh, kw) = scaling · B·A at every kernel position.</summary>
    /// <exception cref="NotSupportedException">The base layer has groups &gt; 1.</exception>
    protected override Tensor Delta(string adapterName)
    {
        if (Base.groups > 1)
        {
            throw new NotSupportedException($"A LoRA adapter on a Conv2d with groups={Base.groups} cannot be merged: its update is not a grouped kernel (the reference refuses this too).");
        }
        var a = lora_A[adapterName].weight!;                                        // (r, in, kh, kw)
        var b = lora_B[adapterName].weight!;                                        // (out, r, 1, 1)
        var delta = torch.matmul(b.flatten(1), a.flatten(1)).view(b.shape[0], a.shape[1], a.shape[2], a.shape[3]);
        return (delta * _scaling[adapterName]).to(BaseWeight.dtype);
    }

    /// <inheritdoc />
    protected override void MergeAdapter(string adapterName)
    {
        BaseWeight.add_(Delta(adapterName));
        if (lora_B[adapterName].bias is { } bias) BaseBias(adapterName).add_(bias * _scaling[adapterName]);
    }

    /// <inheritdoc />
    protected override void UnmergeAdapter(string adapterName)
    {
        BaseWeight.sub_(Delta(adapterName));
        if (lora_B[adapterName].bias is { } bias) BaseBias(adapterName).sub_(bias * _scaling[adapterName]);
    }

    private Tensor BaseBias(string adapterName) => Base.bias
        ?? throw new NotSupportedException($"Adapter '{adapterName}' has lora_bias but the base Conv2d has no bias to merge it into.");

    Tensor ILoraFactors.FactorA(string adapterName) => lora_A[adapterName].weight!;

    Tensor ILoraFactors.FactorB(string adapterName) => lora_B[adapterName].weight!;

    double ILoraFactors.ScalingOf(string adapterName) => _scaling[adapterName];

    string? ILoraFactors.ProductBlocker => Base.groups > 1 ? $"a Conv2d with groups={Base.groups}, whose update is not the product of lora_B and lora_A" : null;

    /// <inheritdoc />
    public override void DeleteAdapter(string adapterName)
    {
        if (!_scaling.Remove(adapterName)) return;
        lora_dropout.Remove(adapterName);
        lora_A.Remove(adapterName);
        lora_B.Remove(adapterName);
        ActiveAdapters = ActiveAdapters.Where(a => a != adapterName).ToArray();
    }
}
