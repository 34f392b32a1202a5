namespace Peft.Tuners;

/// <summary>
/// A safe merge (the reference's <c>safe_merge=True</c>) found NaN or infinity in a merged weight; the
/// layer it was computed for was left as it was.
/// </summary>
/// <param name="adapterName">The adapter that would have written the non-finite weight.</param>
/// <param name="message">Which adapter and layer.</param>
public sealed class NonFiniteMergeException(string adapterName, string message) : InvalidOperationException(message)
{
    /// <summary>The adapter whose merge was refused.</summary>
    public string AdapterName { get; } = adapterName;
}
