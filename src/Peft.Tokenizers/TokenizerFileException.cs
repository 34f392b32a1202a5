namespace Peft.Tokenizers;

/// <summary>A tokenizer file that cannot be used; the message names the file and what is wrong.</summary>
public sealed class TokenizerFileException : Exception
{
    /// <summary>Creates the exception for <paramref name="path"/>.</summary>
    public TokenizerFileException(string path, string problem, Exception? inner = null) : base($"{path}: {problem}", inner) => Path = path;

    /// <summary>The file.</summary>
    public string Path { get; }
}
