using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Peft.Generators.Helpers;
using Peft.Generators.Model;

namespace Peft.Generators;

/// <summary>
/// Writes, for every <c>partial</c> class marked <c>[TargetModules]</c>, its <c>IModuleSlots</c>
/// implementation, and for every architecture plugin marked <c>[DefaultLoraTargets]</c>, its
/// <c>DefaultLoraTargets</c> property.
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

    /// <summary>Metadata name of <c>Peft.Plugins.DefaultLoraTargetsAttribute</c>.</summary>
    internal const string DefaultLoraTargetsAttributeName = "Peft.Plugins.DefaultLoraTargetsAttribute";

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
                DefaultLoraTargetsAttributeName,
                static (node, _) => node is ClassDeclarationSyntax,
                static (ctx, ct) => Parser.ParseDefaultLoraTargets(ctx, ct))
            .WithTrackingName(TrackingNames.DefaultLoraTargetsParsed);

        var defaultTargetsSpecs = defaultTargets
            .Where(static result => result.Spec is not null)
            .Select(static (result, _) => result.Spec!)
            .WithTrackingName(TrackingNames.DefaultLoraTargetsSpecs);

        context.RegisterSourceOutput(defaultTargetsSpecs, static (spc, spec) =>
            spc.AddSource(spec.HintName, Emitter.EmitDefaultLoraTargets(spec)));

        var defaultTargetsDiagnostics = defaultTargets
            .Select(static (result, _) => result.Diagnostics)
            .WithTrackingName(TrackingNames.DefaultLoraTargetsDiagnostics);

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

    /// <summary>[DefaultLoraTargets] classes parsed into spec plus diagnostics.</summary>
    public const string DefaultLoraTargetsParsed = nameof(DefaultLoraTargetsParsed);

    /// <summary>The <see cref="DefaultLoraTargetsSpec"/>s that reach source output.</summary>
    public const string DefaultLoraTargetsSpecs = nameof(DefaultLoraTargetsSpecs);

    /// <summary>The diagnostics of [DefaultLoraTargets] classes.</summary>
    public const string DefaultLoraTargetsDiagnostics = nameof(DefaultLoraTargetsDiagnostics);

    /// <summary>Every tracked step.</summary>
    public static readonly ImmutableArray<string> All = ImmutableArray.Create(
        ModuleSlotsParsed,
        ModuleSlotsSpecs,
        ModuleSlotsDiagnostics,
        DefaultLoraTargetsParsed,
        DefaultLoraTargetsSpecs,
        DefaultLoraTargetsDiagnostics);
}
