using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Peft.Generators.Helpers;
using Peft.Generators.Model;

namespace Peft.Generators;

/// <summary>
/// Writes, for every <c>partial</c> class marked <c>[TargetModules]</c>, its <c>IModuleSlots</c>
/// implementation, and for every architecture plugin marked <c>[DefaultTargets]</c>, its
/// <c>DefaultTargets</c> property.
/// </summary>
/// <remarks>
/// This file is the pipeline only: <see cref="Parser"/> turns symbols into plain-data specs
/// (Model/*Spec.cs), <see cref="Emitter"/> turns specs into source. Diagnostics travel through a
/// pipeline of their own, apart from source output, so a moved line that changes a diagnostic's
/// location does not re-emit source, and an unchanged spec does not re-report.
/// </remarks>
[Generator(LanguageNames.CSharp)]
public sealed partial class TargetModulesGenerator : IIncrementalGenerator
{
    /// <summary>Metadata name of <c>Peft.TargetModulesAttribute</c>.</summary>
    internal const string TargetModulesAttributeName = "Peft.TargetModulesAttribute";

    /// <summary>Metadata name of <c>Peft.Plugins.DefaultTargetsAttribute</c>.</summary>
    internal const string DefaultTargetsAttributeName = "Peft.Plugins.DefaultTargetsAttribute";

    /// <inheritdoc />
    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        var moduleSlots = context.SyntaxProvider
            .ForAttributeWithMetadataName(
                TargetModulesAttributeName,
                static (node, _) => node is ClassDeclarationSyntax,
                static (ctx, ct) => Parser.ParseModuleSlots(ctx, ct))
            .WithTrackingName(TrackingNames.ModuleSlotsParsed);

        var moduleSlotsSpecs = moduleSlots
            .Where(static result => result.Spec is not null)
            .Select(static (result, _) => result.Spec!)
            .WithTrackingName(TrackingNames.ModuleSlotsSpecs);

        context.RegisterSourceOutput(moduleSlotsSpecs, static (spc, spec) =>
            spc.AddSource(spec.HintName, Emitter.EmitModuleSlots(spec)));

        var moduleSlotsDiagnostics = moduleSlots
            .Select(static (result, _) => result.Diagnostics)
            .WithTrackingName(TrackingNames.ModuleSlotsDiagnostics);

        context.RegisterSourceOutput(moduleSlotsDiagnostics, ReportDiagnostics);

        var defaultTargets = context.SyntaxProvider
            .ForAttributeWithMetadataName(
                DefaultTargetsAttributeName,
                static (node, _) => node is ClassDeclarationSyntax,
                static (ctx, ct) => Parser.ParseDefaultTargets(ctx, ct))
            .WithTrackingName(TrackingNames.DefaultTargetsParsed);

        var defaultTargetsSpecs = defaultTargets
            .Where(static result => result.Spec is not null)
            .Select(static (result, _) => result.Spec!)
            .WithTrackingName(TrackingNames.DefaultTargetsSpecs);

        context.RegisterSourceOutput(defaultTargetsSpecs, static (spc, spec) =>
            spc.AddSource(spec.HintName, Emitter.EmitDefaultTargets(spec)));

        var defaultTargetsDiagnostics = defaultTargets
            .Select(static (result, _) => result.Diagnostics)
            .WithTrackingName(TrackingNames.DefaultTargetsDiagnostics);

        context.RegisterSourceOutput(defaultTargetsDiagnostics, ReportDiagnostics);
    }

    private static void ReportDiagnostics(SourceProductionContext context, EquatableArray<DiagnosticSpec> diagnostics)
    {
        foreach (var diagnostic in diagnostics)
        {
            context.ReportDiagnostic(diagnostic.ToDiagnostic());
        }
    }
}

/// <summary>The names of the tracked pipeline steps, which tests read to check caching.</summary>
internal static class TrackingNames
{
    /// <summary>[TargetModules] classes parsed into spec plus diagnostics.</summary>
    public const string ModuleSlotsParsed = nameof(ModuleSlotsParsed);

    /// <summary>The <see cref="ModuleSlotsSpec"/>s that reach source output.</summary>
    public const string ModuleSlotsSpecs = nameof(ModuleSlotsSpecs);

    /// <summary>The diagnostics of [TargetModules] classes.</summary>
    public const string ModuleSlotsDiagnostics = nameof(ModuleSlotsDiagnostics);

    /// <summary>[DefaultTargets] classes parsed into spec plus diagnostics.</summary>
    public const string DefaultTargetsParsed = nameof(DefaultTargetsParsed);

    /// <summary>The <see cref="DefaultTargetsSpec"/>s that reach source output.</summary>
    public const string DefaultTargetsSpecs = nameof(DefaultTargetsSpecs);

    /// <summary>The diagnostics of [DefaultTargets] classes.</summary>
    public const string DefaultTargetsDiagnostics = nameof(DefaultTargetsDiagnostics);

    /// <summary>Every tracked step.</summary>
    public static readonly ImmutableArray<string> All = ImmutableArray.Create(
        ModuleSlotsParsed,
        ModuleSlotsSpecs,
        ModuleSlotsDiagnostics,
        DefaultTargetsParsed,
        DefaultTargetsSpecs,
        DefaultTargetsDiagnostics);
}
