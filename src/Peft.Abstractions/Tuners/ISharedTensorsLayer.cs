using static TorchSharp.torch;

namespace Peft.Tuners;

/// <summary>
/// An adapter layer whose adapters also read tensors that every layer of the adapter shares and that the
/// reference saves once, outside any layer: VeRA's frozen random projections, saved as
/// <c>base_model.vera_A</c> and <c>base_model.vera_B</c>. <see cref="TunerAdapter"/> saves and loads them
/// beside the layers' parameters.
/// </summary>
public interface ISharedTensorsLayer
{
    /// <summary>The shared tensors adapter <paramref name="adapterName"/> reads; the same key from several layers is one tensor.</summary>
    IEnumerable<SharedTensor> SharedTensors(string adapterName);
}

/// <summary>A tensor shared by the layers of one adapter.</summary>
/// <param name="SavedKey">Its whole key in the adapter file (<c>base_model.vera_A</c>).</param>
/// <param name="Tensor">The tensor itself; loading copies into it in place, so every layer sees the loaded value.</param>
/// <param name="Saved">
/// Whether adapter files carry it (VeRA's <c>save_projection</c>): then saving writes it and loading requires
/// it. When false it is rebuilt from the config, and a copy found in a file is ignored, as the reference does.
/// </param>
public sealed record SharedTensor(string SavedKey, Tensor Tensor, bool Saved);
