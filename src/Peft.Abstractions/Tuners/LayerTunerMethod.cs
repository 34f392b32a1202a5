using static TorchSharp.torch;

namespace Peft.Tuners;

/// <summary>
/// A <see cref="TunerMethod{TConfig}"/> whose targets all get one layer type <typeparamref name="TLayer"/> (every built-in
/// method but LoRA, which picks its layer by kind): it says which kinds it wraps, how its layer is made and how an
/// adapter is added to one, and <see cref="CreateLayer"/> and <see cref="TryAddToLayer"/> follow from those.
/// </summary>
/// <typeparam name="TConfig">The method's config.</typeparam>
/// <typeparam name="TLayer">The method's adapter layer.</typeparam>
public abstract class TunerMethod<TConfig, TLayer> : TunerMethod<TConfig> where TConfig : TunerConfig where TLayer : nn.Module<Tensor, Tensor>
{
    /// <summary>Whether a base layer of <paramref name="shape"/> gets this method's layer; Linear only by default.</summary>
    protected virtual bool Wraps(LayerShape shape) => shape.Kind == SlotKind.Linear;

    /// <summary>This method's layer around <paramref name="baseLayer"/> (the slot <paramref name="path"/>), without adapters yet.</summary>
    protected abstract TLayer NewLayer(nn.Module<Tensor, Tensor> baseLayer, TConfig config, string path);

    /// <summary>Adds adapter <paramref name="adapterName"/> to <paramref name="layer"/>; <paramref name="path"/> is the slot's full name (for per-module patterns).</summary>
    protected abstract void AddAdapter(TLayer layer, TConfig config, string adapterName, string path);

    /// <inheritdoc />
    protected sealed override nn.Module<Tensor, Tensor>? CreateLayer(nn.Module<Tensor, Tensor> baseLayer, LayerShape shape, TConfig config, string adapterName, string path)
    {
        if (!Wraps(shape)) return null;
        var layer = NewLayer(baseLayer, config, path);
        AddAdapter(layer, config, adapterName, path);
        return layer;
    }

    /// <inheritdoc />
    protected sealed override bool TryAddToLayer(nn.Module<Tensor, Tensor> existing, TConfig config, string adapterName, string path)
    {
        if (existing is not TLayer layer) return false;
        AddAdapter(layer, config, adapterName, path);
        return true;
    }
}
