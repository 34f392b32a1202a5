using System;
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
    public static readonly DiagnosticDescriptor TypeNotPartial = new(
        id: "PEFT0001",
        title: "Generated members need a partial class",
        messageFormat: "'{0}' is marked [{1}] but '{2}' is not partial; add the 'partial' modifier to '{2}' (and to every type containing it) so the generator can add its members",
        category: Category,
        defaultSeverity: DiagnosticSeverity.Error,
        isEnabledByDefault: true);

    /// <summary>PEFT0002: a name listed in [TargetModules] matches no instance field.</summary>
    public static readonly DiagnosticDescriptor SlotNotFound = new(
        id: "PEFT0002",
        title: "Named adapter slot not found",
        messageFormat: "'{0}' has no instance field registered as '{1}'; fix the name, add the field, or mark the field [ComponentName(Name = \"{1}\")]",
        category: Category,
        defaultSeverity: DiagnosticSeverity.Error,
        isEnabledByDefault: true);

    /// <summary>PEFT0003: a named slot field is readonly, so an adapter cannot take its place.</summary>
    public static readonly DiagnosticDescriptor SlotFieldReadOnly = new(
        id: "PEFT0003",
        title: "Adapter slot field is readonly",
        messageFormat: "Adapter slot '{1}' of '{0}' is the readonly field '{2}'; remove 'readonly' so an adapter can replace it",
        category: Category,
        defaultSeverity: DiagnosticSeverity.Error,
        isEnabledByDefault: true);

    /// <summary>PEFT0004: a named slot field's type cannot hold an adapter layer.</summary>
    public static readonly DiagnosticDescriptor SlotFieldNotReplaceable = new(
        id: "PEFT0004",
        title: "Adapter slot field has a type an adapter cannot replace",
        messageFormat: "Adapter slot '{1}' of '{0}' is the field '{2}' of type '{3}', which an adapter layer cannot replace; declare it as Module<Tensor, Tensor>",
        category: Category,
        defaultSeverity: DiagnosticSeverity.Error,
        isEnabledByDefault: true);

    /// <summary>PEFT0005: the same name is given twice.</summary>
    public static readonly DiagnosticDescriptor DuplicateName = new(
        id: "PEFT0005",
        title: "Duplicate module name",
        messageFormat: "'{0}' names '{1}' more than once; remove the duplicate, or give one of the fields another [ComponentName]",
        category: Category,
        defaultSeverity: DiagnosticSeverity.Error,
        isEnabledByDefault: true);

    /// <summary>PEFT0006: [TargetModules] is on a class that is not a TorchSharp module.</summary>
    public static readonly DiagnosticDescriptor NotAModule = new(
        id: "PEFT0006",
        title: "[TargetModules] class is not a TorchSharp module",
        messageFormat: "'{0}' is marked [TargetModules] but does not derive from TorchSharp's torch.nn.Module; derive it from Module<Tensor, Tensor> (or another nn.Module), or remove the attribute",
        category: Category,
        defaultSeverity: DiagnosticSeverity.Error,
        isEnabledByDefault: true);

    /// <summary>PEFT0007: [DefaultTargets] is on a class that is not an architecture plugin.</summary>
    public static readonly DiagnosticDescriptor NotAnArchitecture = new(
        id: "PEFT0007",
        title: "[DefaultTargets] class is not an architecture plugin",
        messageFormat: "'{0}' is marked [DefaultTargets] but does not implement Peft.Plugins.IArchitecture; implement IArchitecture, or remove the attribute",
        category: Category,
        defaultSeverity: DiagnosticSeverity.Error,
        isEnabledByDefault: true);

    /// <summary>PEFT0008: the class already declares DefaultTargets by hand.</summary>
    public static readonly DiagnosticDescriptor DefaultTargetsDeclared = new(
        id: "PEFT0008",
        title: "DefaultTargets is both declared and generated",
        messageFormat: "'{0}' declares DefaultTargets itself and is marked [DefaultTargets]; delete the hand-written member (the generator writes it), or remove the attributes",
        category: Category,
        defaultSeverity: DiagnosticSeverity.Error,
        isEnabledByDefault: true);

    /// <summary>PEFT0009: a [DefaultTargets] without a method, or a method given twice.</summary>
    public static readonly DiagnosticDescriptor BadDefaultTargetsMethod = new(
        id: "PEFT0009",
        title: "[DefaultTargets] method missing or given twice",
        messageFormat: "'{0}' has a [DefaultTargets] for method '{1}' that is empty or already declared; give each method one [DefaultTargets], keyed by its peft_type such as \"LORA\"",
        category: Category,
        defaultSeverity: DiagnosticSeverity.Error,
        isEnabledByDefault: true);

    /// <summary>The descriptor with id <paramref name="id"/>.</summary>
    /// <exception cref="ArgumentException">No descriptor has that id.</exception>
    public static DiagnosticDescriptor ById(string id) => id switch
    {
        "PEFT0001" => TypeNotPartial,
        "PEFT0002" => SlotNotFound,
        "PEFT0003" => SlotFieldReadOnly,
        "PEFT0004" => SlotFieldNotReplaceable,
        "PEFT0005" => DuplicateName,
        "PEFT0006" => NotAModule,
        "PEFT0007" => NotAnArchitecture,
        "PEFT0008" => DefaultTargetsDeclared,
        "PEFT0009" => BadDefaultTargetsMethod,
        _ => throw new ArgumentException($"Unknown diagnostic id '{id}'.", nameof(id)),
    };
}
