namespace Peft.Checkpoints;

/// <summary>
/// A checkpoint could not be read or written: the file is missing, truncated or malformed, or a tensor
/// cannot be stored. The message always names the file and, where one is involved, the tensor key.
/// </summary>
public sealed class CheckpointException : Exception
{
    /// <summary>Creates the exception for <paramref name="filePath"/> (and <paramref name="tensorName"/>, if any).</summary>
    /// <param name="filePath">The file being read or written.</param>
    /// <param name="tensorName">The tensor key concerned, or null when the problem is with the file as a whole.</param>
    /// <param name="problem">What is wrong, without the file or key (they are added to the message).</param>
    /// <param name="innerException">The underlying error, if any.</param>
    public CheckpointException(string filePath, string? tensorName, string problem, Exception? innerException = null)
        : base(Compose(filePath, tensorName, problem), innerException)
    {
        FilePath = filePath;
        TensorName = tensorName;
    }

    /// <summary>The file being read or written.</summary>
    public string FilePath { get; }

    /// <summary>The tensor key concerned, or null when the problem is with the file as a whole.</summary>
    public string? TensorName { get; }

    private static string Compose(string filePath, string? tensorName, string problem) =>
        tensorName is null
            ? $"Checkpoint '{filePath}': {problem}"
            : $"Checkpoint '{filePath}', tensor '{tensorName}': {problem}";
}
