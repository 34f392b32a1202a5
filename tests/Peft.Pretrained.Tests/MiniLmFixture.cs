namespace Peft.Pretrained.Tests;

/// <summary>Converts the packaged model once per test run into a temporary cache directory.</summary>
public sealed class MiniLmFixture : IDisposable
{
    /// <summary>The temporary cache directory.</summary>
    public string CacheDirectory { get; } = Path.Combine(Path.GetTempPath(), "peft-minilm-tests-" + Guid.NewGuid().ToString("N"));

    private readonly Lazy<string> _modelDirectory;

    public MiniLmFixture() => _modelDirectory = new Lazy<string>(() => MiniLmModel.EnsureConverted(CacheDirectory));

    /// <summary>The converted model directory (converted on first use).</summary>
    public string ModelDirectory => _modelDirectory.Value;

    public void Dispose()
    {
        if (Directory.Exists(CacheDirectory)) Directory.Delete(CacheDirectory, recursive: true);
    }
}

[CollectionDefinition(Name)]
public sealed class MiniLmCollection : ICollectionFixture<MiniLmFixture>
{
    public const string Name = "MiniLM";
}
