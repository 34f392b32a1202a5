using System.Text.RegularExpressions;

namespace Peft.Modeling;

/// <summary>
/// One architecture's renamings between Hugging Face's classic module names (transformers 4
/// checkpoints and adapters: <c>vit.encoder.layer.0.attention.attention.query</c>) and the run-time
/// names its module tree uses (transformers 5: <c>vit.layers.0.attention.q_proj</c>), declared as
/// data. Loaders map checkpoint and adapter keys with <see cref="ToCurrent"/>; adapter configs'
/// module names match either spelling through <see cref="ToClassic"/>.
/// </summary>
/// <remarks>
/// Each rule is a pair of dotted templates matched at whole path segments, in which <c>*</c> stands
/// for one numeric segment (a layer index): <c>("encoder.layer.*", "layers.*")</c>. Rules apply in
/// order towards current names and in reverse order towards classic ones, so a longer rule
/// (<c>attention.output.dense</c>) must come before a shorter one it contains (<c>output.dense</c>).
/// </remarks>
public sealed class ModuleRenames
{
    private readonly (Regex Pattern, string Replacement)[] _toCurrent;
    private readonly (Regex Pattern, string Replacement)[] _toClassic;

    /// <summary>Declares the rules, as (classic, current) template pairs.</summary>
    /// <exception cref="ArgumentException">A pair's templates have different numbers of <c>*</c>.</exception>
    public ModuleRenames(params (string Classic, string Current)[] rules)
    {
        Rules = rules;
        foreach (var (classic, current) in rules)
        {
            if (classic.Count(c => c == '*') != current.Count(c => c == '*'))
            {
                throw new ArgumentException($"Rename '{classic}' → '{current}': both sides need the same number of '*'.", nameof(rules));
            }
        }
        _toCurrent = rules.Select(r => Compile(r.Classic, r.Current)).ToArray();
        _toClassic = rules.Reverse().Select(r => Compile(r.Current, r.Classic)).ToArray();
    }

    /// <summary>No renamings: both spellings are the same.</summary>
    public static ModuleRenames None { get; } = new();

    /// <summary>The rules, as declared.</summary>
    public IReadOnlyList<(string Classic, string Current)> Rules { get; }

    /// <summary>A dotted name (module path or tensor key) in run-time spelling; current names come back unchanged.</summary>
    public string ToCurrent(string name) => Apply(_toCurrent, name);

    /// <summary>A dotted name in the classic spelling.</summary>
    public string ToClassic(string name) => Apply(_toClassic, name);

    private static string Apply((Regex Pattern, string Replacement)[] rules, string name)
    {
        foreach (var (pattern, replacement) in rules) name = pattern.Replace(name, replacement);
        return name;
    }

    // "encoder.layer.*" → (?<=^|\.)encoder\.layer\.(\d+)(?=\.|$), replaced by "layers.$1".
    private static (Regex, string) Compile(string from, string to)
    {
        var parts = from.Split('*');
        var pattern = string.Join(@"(\d+)", parts.Select(Regex.Escape));
        var index = 0;
        var replacement = string.Concat(to.Split('*').Select((part, i) => i == 0 ? part.Replace("$", "$$") : "${" + ++index + "}" + part.Replace("$", "$$")));
        return (new Regex(@"(?<=^|\.)" + pattern + @"(?=\.|$)", RegexOptions.CultureInvariant), replacement);
    }
}
