using System;
using System.Collections.Immutable;
using System.Linq;
using System.Reflection;
using Microsoft.CodeAnalysis;

namespace Peft.Generators.Diagnostics;

/// <summary>
/// The diagnostics of the Peft generators. Each message says what is wrong and how to fix it. Keep
/// AnalyzerReleases.Unshipped.md in step when adding one (RS2000 reminds you), and
/// docs/GENERATOR.md's table.
/// </summary>
internal static class DiagnosticDescriptors
{
    private const string Category = "Peft.Generators";

    /// <summary>PEFT0001: the marked class, or a type containing it, is not partial.</summary>
    public static readonly DiagnosticDescriptor TypeNotPartial = Create(
        "PEFT0001",
        "Generated members need a partial class",
        "'{0}' is marked [{1}] but '{2}' is not partial; add the 'partial' modifier to '{2}' (and to every type containing it) so the generator can add its members");

    /// <summary>PEFT0002: a name listed in [TargetModules] matches no instance field.</summary>
    public static readonly DiagnosticDescriptor SlotNotFound = Create(
        "PEFT0002",
        "Named adapter slot not found",
        "'{0}' has no instance field registered as '{1}'; fix the name, add the field, or mark the field [ComponentName(Name = \"{1}\")]");

    /// <summary>PEFT0003: a named slot field is readonly, so an adapter cannot take its place.</summary>
    public static readonly DiagnosticDescriptor SlotFieldReadOnly = Create(
        "PEFT0003",
        "Adapter slot field is readonly",
        "Adapter slot '{1}' of '{0}' is the readonly field '{2}'; remove 'readonly' so an adapter can replace it");

    /// <summary>PEFT0004: a named slot field's type cannot hold an adapter layer.</summary>
    public static readonly DiagnosticDescriptor SlotFieldNotReplaceable = Create(
        "PEFT0004",
        "Adapter slot field has a type an adapter cannot replace",
        "Adapter slot '{1}' of '{0}' is the field '{2}' of type '{3}', which an adapter layer cannot replace; declare it as Module<Tensor, Tensor>");

    /// <summary>PEFT0005: the same name is given twice.</summary>
    public static readonly DiagnosticDescriptor DuplicateName = Create(
        "PEFT0005",
        "Duplicate module name",
        "'{0}' names '{1}' more than once; remove the duplicate, or give one of the fields another [ComponentName]");

    /// <summary>PEFT0006: [TargetModules] is on a class that is not a TorchSharp module.</summary>
    public static readonly DiagnosticDescriptor NotAModule = Create(
        "PEFT0006",
        "[TargetModules] class is not a TorchSharp module",
        "'{0}' is marked [TargetModules] but does not derive from TorchSharp's torch.nn.Module; derive it from Module<Tensor, Tensor> (or another nn.Module), or remove the attribute");

    /// <summary>PEFT0007: [DefaultTargets] is on a class that is not an architecture plugin.</summary>
    public static readonly DiagnosticDescriptor NotAnArchitecture = Create(
        "PEFT0007",
        "[DefaultTargets] class is not an architecture plugin",
        "'{0}' is marked [DefaultTargets] but does not implement Peft.Plugins.IArchitecture; implement IArchitecture, or remove the attribute");

    /// <summary>PEFT0008: the class already declares DefaultTargets by hand.</summary>
    public static readonly DiagnosticDescriptor DefaultTargetsDeclared = Create(
        "PEFT0008",
        "DefaultTargets is both declared and generated",
        "'{0}' declares DefaultTargets itself and is marked [DefaultTargets]; delete the hand-written member (the generator writes it), or remove the attributes");

    /// <summary>PEFT0009: a [DefaultTargets] without a method, or a method given twice.</summary>
    public static readonly DiagnosticDescriptor BadDefaultTargetsMethod = Create(
        "PEFT0009",
        "[DefaultTargets] method missing or given twice",
        "'{0}' has a [DefaultTargets] for method '{1}' that is empty or already declared; give each method one [DefaultTargets], keyed by its peft_type such as \"LORA\"");

    /// <summary>Every descriptor, in id order: the one list <see cref="ById"/> and the release tracking tests read.</summary>
    public static readonly ImmutableArray<DiagnosticDescriptor> All = ImmutableArray.Create(
        TypeNotPartial,
        SlotNotFound,
        SlotFieldReadOnly,
        SlotFieldNotReplaceable,
        DuplicateName,
        NotAModule,
        NotAnArchitecture,
        DefaultTargetsDeclared,
        BadDefaultTargetsMethod);

    /// <summary>The descriptor with id <paramref name="id"/>.</summary>
    /// <exception cref="ArgumentException">No descriptor has that id.</exception>
    public static DiagnosticDescriptor ById(string id) =>
        All.FirstOrDefault(d => d.Id == id) ?? throw new ArgumentException($"Unknown diagnostic id '{id}'.", nameof(id));

    /// <summary>An error-severity descriptor whose help link is its row in docs/GENERATOR.md.</summary>
    private static DiagnosticDescriptor Create(string id, string title, string messageFormat) => new(
        id,
        title,
        messageFormat,
        Category,
        DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        helpLinkUri: HelpLink(id));

    /// <summary>
    /// docs/GENERATOR.md's anchor for <paramref name="id"/>, under the project URL the packages were built
    /// with (<c>PEFT_PROJECT_URL</c>); without one, the path in the repository.
    /// </summary>
    internal static string HelpLink(string id)
    {
        var url = typeof(DiagnosticDescriptors).Assembly.GetCustomAttributes(typeof(AssemblyMetadataAttribute), false)
            .OfType<AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == "PeftProjectUrl")?.Value;
        var page = "docs/GENERATOR.md#" + id.ToLowerInvariant();
        return string.IsNullOrEmpty(url) ? page : url!.TrimEnd('/') + "/blob/main/" + page;
    }
}
