namespace Peft.Pretrained;

/// <summary>
/// What the offline pretrained models share: a converted model directory in a cache, written to a temporary sibling and
/// moved into place (so it is always complete, and an incomplete one is redone), and the NuGet package file it is
/// converted from.
/// </summary>
internal static class ConvertedModelCache
{
    /// <summary>
    /// <c>&lt;cacheDirectory&gt;/&lt;name&gt;</c>, running <paramref name="convert"/> into a staging directory first unless
    /// every one of <paramref name="files"/> is already there.
    /// </summary>
    public static string Ensure(string cacheDirectory, string name, IReadOnlyList<string> files, Action<string> convert)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(cacheDirectory);
        var target = Path.Combine(Path.GetFullPath(cacheDirectory), name);
        bool IsComplete(string directory) => files.All(f => File.Exists(Path.Combine(directory, f)));
        if (IsComplete(target)) return target;

        Directory.CreateDirectory(cacheDirectory);
        var staging = $"{target}.{Guid.NewGuid():N}.tmp";
        try
        {
            convert(staging);
            if (Directory.Exists(target) && !IsComplete(target)) Directory.Delete(target, recursive: true);
            try
            {
                Directory.Move(staging, target);
            }
            catch (IOException) when (IsComplete(target))
            {
                // Another process finished first; its copy is as good as ours.
            }
        }
        finally
        {
            if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
        }
        return target;
    }

    /// <summary>
    /// A package file: next to the application (<see cref="AppContext.BaseDirectory"/>), next to the assembly of
    /// <paramref name="owner"/> (the project copies it there), or in the NuGet package cache (<c>NUGET_PACKAGES</c> or
    /// <c>~/.nuget/packages</c>) under <paramref name="packagePath"/>.
    /// </summary>
    /// <exception cref="FileNotFoundException">None of these places holds it; the message lists them.</exception>
    public static string FindPackageFile(Type owner, string fileName, string packageId, string packageVersion, string packagePath)
    {
        var packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } fromEnvironment
            ? fromEnvironment
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        string[] candidates =
        [
            Path.Combine(AppContext.BaseDirectory, fileName),
            Path.Combine(Path.GetDirectoryName(owner.Assembly.Location) ?? ".", fileName),
            Path.Combine(packages, packageId.ToLowerInvariant(), packageVersion, packagePath, fileName),
        ];
        return candidates.FirstOrDefault(File.Exists)
            ?? throw new FileNotFoundException(
                $"{fileName} (NuGet package {packageId} {packageVersion}) was not found; looked in: {string.Join(", ", candidates.Distinct())}.",
                fileName);
    }
}
