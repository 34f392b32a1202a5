using System.Collections.Generic;
using System.Linq;
using System.Text;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Peft.Generators.Diagnostics;
using Peft.Generators.Helpers;
using Peft.Generators.Model;

namespace Peft.Generators;

public sealed partial class TargetModulesGenerator
{
    /// <summary>
    /// Reads symbols into plain-data specs and diagnostics. Everything that needs the semantic
    /// model happens here; what leaves holds no Roslyn object (see Model/*Spec.cs).
    /// </summary>
    internal static class Parser
    {
        private const string ModuleMetadataName = "TorchSharp.torch+nn+Module";
        private const string GenericModuleMetadataName = "TorchSharp.torch+nn+Module`2";
        private const string TensorMetadataName = "TorchSharp.torch+Tensor";
        private const string ComponentNameMetadataName = "TorchSharp.Utils.ComponentNameAttribute";
        private const string ArchitectureMetadataName = "Peft.Plugins.IArchitecture";
        private const string DefaultTargetsProperty = "DefaultTargets";

        /// <summary>Parses one <c>[TargetModules]</c> class.</summary>
        public static ParseResultSpec<ModuleSlotsSpec> ParseModuleSlots(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
        {
            var type = (INamedTypeSymbol)context.TargetSymbol;
            var typeName = type.ToDisplayString();
            var compilation = context.SemanticModel.Compilation;
            var diagnostics = new List<DiagnosticSpec>();

            if (FirstNonPartial(type, cancellationToken) is { } notPartial)
            {
                diagnostics.Add(DiagnosticSpec.Create(
                    DiagnosticDescriptors.TypeNotPartial, IdentifierLocation(notPartial, cancellationToken), typeName, "TargetModules", notPartial.ToDisplayString()));
                return Failed<ModuleSlotsSpec>(diagnostics);
            }

            var module = compilation.GetTypeByMetadataName(ModuleMetadataName);
            var genericModule = compilation.GetTypeByMetadataName(GenericModuleMetadataName);
            var tensor = compilation.GetTypeByMetadataName(TensorMetadataName);
            if (module is null || genericModule is null || tensor is null || !DerivesFrom(type, module))
            {
                diagnostics.Add(DiagnosticSpec.Create(
                    DiagnosticDescriptors.NotAModule, IdentifierLocation(type, cancellationToken), typeName));
                return Failed<ModuleSlotsSpec>(diagnostics);
            }

            var slotType = genericModule.Construct(tensor, tensor);
            var componentName = compilation.GetTypeByMetadataName(ComponentNameMetadataName);
            var fields = type.GetMembers()
                .OfType<IFieldSymbol>()
                .Where(static f => !f.IsStatic && !f.IsConst && !f.IsImplicitlyDeclared)
                .Select(f => (Field: f, Registered: RegisteredName(f, componentName)))
                .ToList();

            var attribute = context.Attributes[0];
            var names = StringArguments(attribute);
            var slots = new List<SlotSpec>();
            var seen = new HashSet<string>();

            if (names.Count == 0)
            {
                // Every replaceable field is a slot; the rest (readonly, LayerNorm, ...) are left alone.
                foreach (var (field, name) in fields)
                {
                    if (field.IsReadOnly || !IsSlotType(field, slotType))
                    {
                        continue;
                    }

                    if (!seen.Add(name))
                    {
                        diagnostics.Add(DiagnosticSpec.Create(
                            DiagnosticDescriptors.DuplicateName, FirstLocation(field), typeName, name));
                        continue;
                    }

                    slots.Add(ToSlot(field, name));
                }
            }
            else
            {
                var argumentLocations = ArgumentLocations(attribute, names.Count, cancellationToken);
                for (var i = 0; i < names.Count; i++)
                {
                    var name = names[i];
                    if (!seen.Add(name))
                    {
                        diagnostics.Add(DiagnosticSpec.Create(
                            DiagnosticDescriptors.DuplicateName, argumentLocations[i], typeName, name));
                        continue;
                    }

                    var match = fields.FirstOrDefault(f => f.Registered == name).Field;
                    if (match is null)
                    {
                        diagnostics.Add(DiagnosticSpec.Create(
                            DiagnosticDescriptors.SlotNotFound, argumentLocations[i], typeName, name));
                    }
                    else if (match.IsReadOnly)
                    {
                        diagnostics.Add(DiagnosticSpec.Create(
                            DiagnosticDescriptors.SlotFieldReadOnly, FirstLocation(match), typeName, name, match.Name));
                    }
                    else if (!IsSlotType(match, slotType))
                    {
                        diagnostics.Add(DiagnosticSpec.Create(
                            DiagnosticDescriptors.SlotFieldNotReplaceable, FirstLocation(match), typeName, name, match.Name, match.Type.ToDisplayString()));
                    }
                    else
                    {
                        slots.Add(ToSlot(match, name));
                    }
                }
            }

            // Slots with errors are left out but the rest is still emitted, so the class keeps
            // implementing IModuleSlots and the only errors are the ones above.
            var spec = new ModuleSlotsSpec(
                HintName(type, "TargetModules"),
                NamespaceOf(type),
                ContainingTypes(type),
                Declaration(type),
                slots.ToEquatableArray());
            return new ParseResultSpec<ModuleSlotsSpec>(spec, diagnostics.ToEquatableArray());
        }

        /// <summary>Parses one <c>[DefaultTargets]</c> architecture plugin: every attribute on it is one method's table.</summary>
        public static ParseResultSpec<DefaultTargetsSpec> ParseDefaultTargets(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
        {
            var type = (INamedTypeSymbol)context.TargetSymbol;
            var typeName = type.ToDisplayString();
            var diagnostics = new List<DiagnosticSpec>();

            if (FirstNonPartial(type, cancellationToken) is { } notPartial)
            {
                diagnostics.Add(DiagnosticSpec.Create(
                    DiagnosticDescriptors.TypeNotPartial, IdentifierLocation(notPartial, cancellationToken), typeName, "DefaultTargets", notPartial.ToDisplayString()));
                return Failed<DefaultTargetsSpec>(diagnostics);
            }

            var architecture = context.SemanticModel.Compilation.GetTypeByMetadataName(ArchitectureMetadataName);
            if (architecture is null || !type.AllInterfaces.Contains(architecture, SymbolEqualityComparer.Default))
            {
                diagnostics.Add(DiagnosticSpec.Create(
                    DiagnosticDescriptors.NotAnArchitecture, IdentifierLocation(type, cancellationToken), typeName));
                return Failed<DefaultTargetsSpec>(diagnostics);
            }

            var handWritten = type.GetMembers()
                .Where(static m => !m.IsImplicitlyDeclared)
                .FirstOrDefault(static m => m.Name == DefaultTargetsProperty
                    || (m is IPropertySymbol p && p.ExplicitInterfaceImplementations.Any(static i => i.Name == DefaultTargetsProperty)));
            if (handWritten is not null)
            {
                diagnostics.Add(DiagnosticSpec.Create(
                    DiagnosticDescriptors.DefaultTargetsDeclared, FirstLocation(handWritten), typeName));
                return Failed<DefaultTargetsSpec>(diagnostics);
            }

            var tables = new List<TargetTableSpec>();
            foreach (var attribute in context.Attributes)
            {
                var (method, names) = TableArguments(attribute);
                if (method.Length == 0 || tables.Any(t => t.Method == method))
                {
                    diagnostics.Add(DiagnosticSpec.Create(
                        DiagnosticDescriptors.BadDefaultTargetsMethod, AttributeLocation(attribute, cancellationToken), typeName, method));
                    continue;
                }

                // The method is argument 0; names follow, one argument each unless passed as an array.
                var argumentLocations = ArgumentLocations(attribute, names.Count + 1, cancellationToken);
                var targets = new List<string>();
                for (var i = 0; i < names.Count; i++)
                {
                    if (targets.Contains(names[i]))
                    {
                        diagnostics.Add(DiagnosticSpec.Create(
                            DiagnosticDescriptors.DuplicateName, argumentLocations[i + 1], typeName, names[i]));
                        continue;
                    }

                    targets.Add(names[i]);
                }

                tables.Add(new TargetTableSpec(method, targets.ToEquatableArray()));
            }

            var spec = new DefaultTargetsSpec(
                HintName(type, "DefaultTargets"),
                NamespaceOf(type),
                ContainingTypes(type),
                Declaration(type),
                tables.ToEquatableArray());
            return new ParseResultSpec<DefaultTargetsSpec>(spec, diagnostics.ToEquatableArray());
        }

        /// <summary>A <c>[DefaultTargets(method, names...)]</c>'s method and names.</summary>
        private static (string Method, List<string> Names) TableArguments(AttributeData attribute)
        {
            var arguments = attribute.ConstructorArguments;
            var method = arguments.Length > 0 ? arguments[0].Value as string ?? string.Empty : string.Empty;
            var names = new List<string>();
            if (arguments.Length == 2 && arguments[1].Kind == TypedConstantKind.Array)
            {
                foreach (var value in arguments[1].Values)
                {
                    names.Add(value.Value as string ?? string.Empty);
                }
            }

            return (method, names);
        }

        private static ParseResultSpec<TSpec> Failed<TSpec>(List<DiagnosticSpec> diagnostics)
            where TSpec : class => new(null, diagnostics.ToEquatableArray());

        /// <summary>The type itself or the innermost-first containing type not declared partial, if any.</summary>
        private static INamedTypeSymbol? FirstNonPartial(INamedTypeSymbol type, CancellationToken cancellationToken)
        {
            for (var current = type; current is not null; current = current.ContainingType)
            {
                var isPartial = current.DeclaringSyntaxReferences.Any(reference =>
                    reference.GetSyntax(cancellationToken) is TypeDeclarationSyntax declaration
                    && declaration.Modifiers.Any(SyntaxKind.PartialKeyword));
                if (!isPartial)
                {
                    return current;
                }
            }

            return null;
        }

        private static bool DerivesFrom(INamedTypeSymbol type, INamedTypeSymbol baseType)
        {
            for (var current = type.BaseType; current is not null; current = current.BaseType)
            {
                if (SymbolEqualityComparer.Default.Equals(current, baseType))
                {
                    return true;
                }
            }

            return false;
        }

        /// <summary>Only a field typed exactly <c>Module&lt;Tensor, Tensor&gt;</c> can hold any adapter layer.</summary>
        private static bool IsSlotType(IFieldSymbol field, INamedTypeSymbol slotType) =>
            SymbolEqualityComparer.Default.Equals(field.Type, slotType);

        /// <summary>The name TorchSharp's <c>RegisterComponents()</c> uses: <c>[ComponentName(Name = ...)]</c>, else the field name.</summary>
        private static string RegisteredName(IFieldSymbol field, INamedTypeSymbol? componentName)
        {
            if (componentName is null)
            {
                return field.Name;
            }

            foreach (var attribute in field.GetAttributes())
            {
                if (!SymbolEqualityComparer.Default.Equals(attribute.AttributeClass, componentName))
                {
                    continue;
                }

                foreach (var argument in attribute.NamedArguments)
                {
                    if (argument.Key == "Name" && argument.Value.Value is string named && named.Length > 0)
                    {
                        return named;
                    }
                }

                if (attribute.ConstructorArguments.Length == 1 && attribute.ConstructorArguments[0].Value is string positional && positional.Length > 0)
                {
                    return positional;
                }
            }

            return field.Name;
        }

        private static SlotSpec ToSlot(IFieldSymbol field, string name) => new(
            name,
            EscapeIdentifier(field.Name),
            field.NullableAnnotation == NullableAnnotation.Annotated);

        /// <summary>The <c>params string[]</c> the attribute was given.</summary>
        private static List<string> StringArguments(AttributeData attribute)
        {
            var names = new List<string>();
            if (attribute.ConstructorArguments.Length == 1 && attribute.ConstructorArguments[0].Kind == TypedConstantKind.Array)
            {
                foreach (var value in attribute.ConstructorArguments[0].Values)
                {
                    names.Add(value.Value as string ?? string.Empty);
                }
            }

            return names;
        }

        /// <summary>Where each name was written: its argument when given one per argument, else the attribute.</summary>
        private static Location?[] ArgumentLocations(AttributeData attribute, int count, CancellationToken cancellationToken)
        {
            var syntax = attribute.ApplicationSyntaxReference?.GetSyntax(cancellationToken) as AttributeSyntax;
            var arguments = syntax?.ArgumentList?.Arguments;
            var locations = new Location?[count];
            for (var i = 0; i < count; i++)
            {
                locations[i] = arguments is { } list && list.Count == count
                    ? list[i].GetLocation()
                    : syntax?.GetLocation();
            }

            return locations;
        }

        private static Location? AttributeLocation(AttributeData attribute, CancellationToken cancellationToken) =>
            attribute.ApplicationSyntaxReference?.GetSyntax(cancellationToken).GetLocation();

        private static Location? IdentifierLocation(INamedTypeSymbol type, CancellationToken cancellationToken)
        {
            foreach (var reference in type.DeclaringSyntaxReferences)
            {
                if (reference.GetSyntax(cancellationToken) is BaseTypeDeclarationSyntax declaration)
                {
                    return declaration.Identifier.GetLocation();
                }
            }

            return FirstLocation(type);
        }

        private static Location? FirstLocation(ISymbol symbol) =>
            symbol.Locations.Length > 0 ? symbol.Locations[0] : null;

        private static string NamespaceOf(INamedTypeSymbol type) =>
            type.ContainingNamespace is { IsGlobalNamespace: false } ns ? ns.ToDisplayString() : string.Empty;

        private static EquatableArray<TypeDeclarationSpec> ContainingTypes(INamedTypeSymbol type)
        {
            var containing = new List<TypeDeclarationSpec>();
            for (var current = type.ContainingType; current is not null; current = current.ContainingType)
            {
                containing.Insert(0, Declaration(current));
            }

            return containing.ToEquatableArray();
        }

        private static TypeDeclarationSpec Declaration(INamedTypeSymbol type)
        {
            var keyword = type.TypeKind switch
            {
                TypeKind.Struct => type.IsRecord ? "record struct" : "struct",
                TypeKind.Interface => "interface",
                _ => type.IsRecord ? "record" : "class",
            };
            var name = EscapeIdentifier(type.Name);
            if (type.TypeParameters.Length > 0)
            {
                name += "<" + string.Join(", ", type.TypeParameters.Select(static p => EscapeIdentifier(p.Name))) + ">";
            }

            return new TypeDeclarationSpec(keyword, name);
        }

        /// <summary>A file name unique per type: <c>Ns.Outer.Block{T}.TargetModules.g.cs</c>.</summary>
        private static string HintName(INamedTypeSymbol type, string suffix)
        {
            var parts = new List<string>();
            for (var current = type; current is not null; current = current.ContainingType)
            {
                var part = new StringBuilder(current.Name);
                if (current.TypeParameters.Length > 0)
                {
                    part.Append('{').Append(string.Join(",", current.TypeParameters.Select(static p => p.Name))).Append('}');
                }

                parts.Insert(0, part.ToString());
            }

            var ns = NamespaceOf(type);
            if (ns.Length > 0)
            {
                parts.Insert(0, ns);
            }

            return string.Join(".", parts) + "." + suffix + ".g.cs";
        }

        private static string EscapeIdentifier(string name) =>
            SyntaxFacts.GetKeywordKind(name) != SyntaxKind.None ? "@" + name : name;
    }
}
