using System.Linq;
using Microsoft.CodeAnalysis.CSharp;
using Peft.Generators.Helpers;
using Peft.Generators.Model;

namespace Peft.Generators;

public sealed partial class TargetModulesGenerator
{
    /// <summary>
    /// Turns specs into C# source with <see cref="SourceWriter"/>. Works on plain data only, so it
    /// runs only when a spec changed.
    /// </summary>
    internal static class Emitter
    {
        private const string TensorModule =
            "global::TorchSharp.torch.nn.Module<global::TorchSharp.torch.Tensor, global::TorchSharp.torch.Tensor>";

        private const string StringList = "global::System.Collections.Generic.IReadOnlyList<string>";

        private const string TargetTables = "global::System.Collections.Generic.IReadOnlyDictionary<string, global::System.Collections.Generic.IReadOnlyList<string>>";
        private const string ReadOnlyStrings = "global::System.Collections.ObjectModel.ReadOnlyCollection<string>";

        private static readonly string s_generatedCode =
            $"[global::System.CodeDom.Compiler.GeneratedCode(\"Peft.Generators\", \"{typeof(Emitter).Assembly.GetName().Version}\")]";

        /// <summary>The <c>IModuleSlots</c> implementation of one <c>[TargetModules]</c> class.</summary>
        public static string EmitModuleSlots(ModuleSlotsSpec spec)
        {
            var writer = new SourceWriter();
            var typeName = spec.Type.Name;
            var names = string.Join(", ", spec.Slots.Select(static s => Literal(s.Name)));

            WriteOpening(writer, spec.Namespace, spec.ContainingTypes);
            writer.WriteLine($"partial {spec.Type.Keyword} {typeName} : global::Peft.IModuleSlots");
            writer.OpenBlock();

            writer.WriteLine(s_generatedCode);
            writer.WriteLine($"private static readonly {ReadOnlyStrings} s_slotNames =");
            writer.Indent().WriteLine($"global::System.Array.AsReadOnly(new string[] {{ {names} }});").Unindent();
            writer.WriteLine();

            writer.WriteLine("/// <inheritdoc />");
            writer.WriteLine(s_generatedCode);
            if (spec.Slots.Any(static s => s.IsNullable))
            {
                // An optional (nullable) module the model was built without is not a slot.
                writer.WriteLine($"public {StringList} SlotNames =>");
                writer.Indent().WriteLine($"global::System.Linq.Enumerable.ToList(global::System.Linq.Enumerable.Where(s_slotNames, name => name switch");
                writer.OpenBlock();
                foreach (var slot in spec.Slots.Where(static s => s.IsNullable))
                {
                    writer.WriteLine($"{Literal(slot.Name)} => this.{slot.FieldName} is not null,");
                }
                writer.WriteLine("_ => true,");
                writer.CloseBlock("));");
                writer.Unindent();
            }
            else
            {
                writer.WriteLine($"public {StringList} SlotNames => s_slotNames;");
            }
            writer.WriteLine();

            writer.WriteLine("/// <inheritdoc />");
            writer.WriteLine(s_generatedCode);
            writer.WriteLine($"public {TensorModule} GetSlot(string name) => name switch");
            writer.OpenBlock();
            foreach (var slot in spec.Slots)
            {
                var value = slot.IsNullable
                    ? $"this.{slot.FieldName} ?? throw Absent(name)"
                    : $"this.{slot.FieldName}";
                writer.WriteLine($"{Literal(slot.Name)} => {value},");
            }

            writer.WriteLine("_ => throw NoSuchSlot(name),");
            writer.CloseBlock(";");
            writer.WriteLine();

            writer.WriteLine("/// <inheritdoc />");
            writer.WriteLine(s_generatedCode);
            writer.WriteLine($"public void ReplaceSlot(string name, {TensorModule} module)");
            writer.OpenBlock();
            writer.WriteLine("if (module is null)");
            writer.OpenBlock();
            writer.WriteLine("throw new global::System.ArgumentNullException(nameof(module));");
            writer.CloseBlock();
            writer.WriteLine();
            if (spec.Slots.Count == 0)
            {
                writer.WriteLine("throw NoSuchSlot(name);");
            }
            else
            {
                writer.WriteLine("switch (name)");
                writer.OpenBlock();
                foreach (var slot in spec.Slots)
                {
                    writer.WriteLine(slot.IsNullable ? $"case {Literal(slot.Name)} when this.{slot.FieldName} is not null:" : $"case {Literal(slot.Name)}:");
                    writer.Indent();
                    writer.WriteLine($"this.{slot.FieldName} = module;");
                    writer.WriteLine("break;");
                    writer.Unindent();
                }

                if (spec.Slots.Any(static s => s.IsNullable))
                {
                    writer.WriteLine($"case {string.Join(" or ", spec.Slots.Where(static s => s.IsNullable).Select(static s => Literal(s.Name)))}:");
                    writer.Indent().WriteLine("throw Absent(name);").Unindent();
                }
                writer.WriteLine("default:");
                writer.Indent().WriteLine("throw NoSuchSlot(name);").Unindent();
                writer.CloseBlock();
                writer.WriteLine();
                writer.WriteLine("// Same key, same position: TorchSharp's registration follows the field.");
                writer.WriteLine("this._internal_submodules[name] = module;");
            }

            writer.CloseBlock();
            writer.WriteLine();

            var known = spec.Slots.Count == 0 ? "it has none" : "its slots are " + string.Join(", ", spec.Slots.Select(static s => s.Name));
            writer.WriteLine("private static global::System.ArgumentException NoSuchSlot(string name) =>");
            writer.Indent()
                .WriteLine($"new({Literal("No adapter slot '")} + name + {Literal($"' in {typeName}; {known}.")}, nameof(name));")
                .Unindent();
            if (spec.Slots.Any(static s => s.IsNullable))
            {
                writer.WriteLine();
                writer.WriteLine("private static global::System.ArgumentException Absent(string name) =>");
                writer.Indent()
                    .WriteLine($"new({Literal("Adapter slot '")} + name + {Literal($"' of {typeName} is empty: this model was built without that optional module.")}, nameof(name));")
                    .Unindent();
            }

            writer.CloseBlock();
            WriteClosing(writer, spec.ContainingTypes);
            return writer.ToString();
        }

        /// <summary>The <c>DefaultTargets</c> property of one <c>[DefaultTargets]</c> architecture plugin.</summary>
        public static string EmitDefaultTargets(DefaultTargetsSpec spec)
        {
            var writer = new SourceWriter();

            WriteOpening(writer, spec.Namespace, spec.ContainingTypes);
            writer.WriteLine($"partial {spec.Type.Keyword} {spec.Type.Name}");
            writer.OpenBlock();

            writer.WriteLine(s_generatedCode);
            writer.WriteLine($"private static readonly {TargetTables} s_defaultTargets =");
            writer.Indent().WriteLine($"new global::System.Collections.ObjectModel.ReadOnlyDictionary<string, {StringList}>(new global::System.Collections.Generic.Dictionary<string, {StringList}>");
            writer.OpenBlock();
            foreach (var table in spec.Tables)
            {
                var names = string.Join(", ", table.Names.Select(Literal));
                var list = table.Names.Count == 0 ? "global::System.Array.Empty<string>()" : $"global::System.Array.AsReadOnly(new string[] {{ {names} }})";
                writer.WriteLine($"[{Literal(table.Method)}] = {list},");
            }
            writer.Unindent().WriteLine("});").Unindent();
            writer.WriteLine();

            writer.WriteLine("/// <inheritdoc />");
            writer.WriteLine(s_generatedCode);
            writer.WriteLine($"public {TargetTables} DefaultTargets => s_defaultTargets;");

            writer.CloseBlock();
            WriteClosing(writer, spec.ContainingTypes);
            return writer.ToString();
        }

        /// <summary>Header, namespace, and the containing types reopened as partial.</summary>
        private static void WriteOpening(SourceWriter writer, string ns, EquatableArray<TypeDeclarationSpec> containingTypes)
        {
            writer.WriteLine("// <auto-generated/>");
            writer.WriteLine("#nullable enable");
            writer.WriteLine();
            if (ns.Length > 0)
            {
                writer.WriteLine($"namespace {ns};");
                writer.WriteLine();
            }

            foreach (var containing in containingTypes)
            {
                writer.WriteLine($"partial {containing.Keyword} {containing.Name}");
                writer.OpenBlock();
            }
        }

        private static void WriteClosing(SourceWriter writer, EquatableArray<TypeDeclarationSpec> containingTypes)
        {
            for (var i = 0; i < containingTypes.Count; i++)
            {
                writer.CloseBlock();
            }
        }

        private static string Literal(string value) => SymbolDisplay.FormatLiteral(value, quote: true);
    }
}
