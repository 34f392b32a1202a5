using Microsoft.CodeAnalysis;

namespace Peft.Generators.Tests;

/// <summary>Each diagnostic: its id, where it points, and a message that says how to fix it.</summary>
public sealed class DiagnosticsTests
{
    [Fact]
    public void PEFT0001_ClassNotPartial() => AssertDiagnostic("PEFT0001", Sources.Usings + """
        [TargetModules]
        public class [|Block|] : nn.Module<Tensor, Tensor>
        {
            public Block() : base(nameof(Block)) { }
            public override Tensor forward(Tensor x) => x;
        }
        """, "add the 'partial' modifier to 'Block'");

    [Fact]
    public void PEFT0001_ContainingTypeNotPartial() => AssertDiagnostic("PEFT0001", Sources.Usings + """
        public class [|Gpt2|]
        {
            [TargetModules]
            public partial class Block : nn.Module<Tensor, Tensor>
            {
                public Block() : base(nameof(Block)) { }
                public override Tensor forward(Tensor x) => x;
            }
        }
        """, "add the 'partial' modifier to 'Gpt2'");

    [Fact]
    public void PEFT0001_ArchitectureNotPartial() => AssertDiagnostic("PEFT0001", Sources.Usings + """
        [DefaultTargets("LORA", "c_attn")]
        public abstract class [|Gpt2Architecture|] : IArchitecture
        {
            public abstract IReadOnlyDictionary<string, IReadOnlyList<string>> DefaultTargets { get; }
            public abstract string ModelType { get; }
            public abstract IReadOnlyList<TaskType> SupportedTasks { get; }
            public abstract ModelConfig ParseConfig(JsonElement json, string source);
            public abstract PreTrainedModel Build(ModelConfig config, TaskType task);
        }
        """, "[DefaultTargets] but 'Gpt2Architecture' is not partial");

    [Fact]
    public void PEFT0002_NamedSlotNotFound() => AssertDiagnostic("PEFT0002", Sources.Usings + """
        [TargetModules("c_attn", [|"c_atn"|])]
        public partial class Block : nn.Module<Tensor, Tensor>
        {
            private nn.Module<Tensor, Tensor> c_attn = nn.Linear(8, 8);
            public Block() : base(nameof(Block)) { }
            public override Tensor forward(Tensor x) => c_attn.forward(x);
        }
        """, "has no instance field registered as 'c_atn'; fix the name, add the field, or mark the field [ComponentName(Name = \"c_atn\")]");

    [Fact]
    public void PEFT0002_FieldNameWhenRegisteredUnderComponentName() => AssertDiagnostic("PEFT0002", Sources.Usings + """
        [TargetModules([|"attention"|])]
        public partial class Block : nn.Module<Tensor, Tensor>
        {
            [ComponentName(Name = "c_attn")]
            private nn.Module<Tensor, Tensor> attention = nn.Linear(8, 8);
            public Block() : base(nameof(Block)) { }
            public override Tensor forward(Tensor x) => attention.forward(x);
        }
        """, "registered as 'attention'");

    [Fact]
    public void PEFT0003_SlotFieldReadOnly() => AssertDiagnostic("PEFT0003", Sources.Usings + """
        [TargetModules("c_attn")]
        public partial class Block : nn.Module<Tensor, Tensor>
        {
            private readonly nn.Module<Tensor, Tensor> [|c_attn|] = nn.Linear(8, 8);
            public Block() : base(nameof(Block)) { }
            public override Tensor forward(Tensor x) => c_attn.forward(x);
        }
        """, "remove 'readonly' so an adapter can replace it");

    [Theory]
    [InlineData("Linear", "nn.Linear(8, 8)")]
    [InlineData("LayerNorm", "nn.LayerNorm(8)")]
    [InlineData("nn.Module", "nn.Linear(8, 8)")]
    public void PEFT0004_SlotFieldTypeNotReplaceable(string type, string init) => AssertDiagnostic("PEFT0004", Sources.Usings + $$"""
        [TargetModules("c_attn")]
        public partial class Block : nn.Module<Tensor, Tensor>
        {
            private {{type}} [|c_attn|] = {{init}};
            public Block() : base(nameof(Block)) { }
            public override Tensor forward(Tensor x) => x;
        }
        """, "which an adapter layer cannot replace; declare it as Module<Tensor, Tensor>");

    [Fact]
    public void PEFT0005_DuplicateNameInAttribute() => AssertDiagnostic("PEFT0005", Sources.Usings + """
        [TargetModules("c_attn", [|"c_attn"|])]
        public partial class Block : nn.Module<Tensor, Tensor>
        {
            private nn.Module<Tensor, Tensor> c_attn = nn.Linear(8, 8);
            public Block() : base(nameof(Block)) { }
            public override Tensor forward(Tensor x) => c_attn.forward(x);
        }
        """, "names 'c_attn' more than once; remove the duplicate");

    [Fact]
    public void PEFT0005_DuplicateRegisteredName() => AssertDiagnostic("PEFT0005", Sources.Usings + """
        [TargetModules]
        public partial class Block : nn.Module<Tensor, Tensor>
        {
            private nn.Module<Tensor, Tensor> c_attn = nn.Linear(8, 8);
            [ComponentName(Name = "c_attn")]
            private nn.Module<Tensor, Tensor> [|attention|] = nn.Linear(8, 8);
            public Block() : base(nameof(Block)) { }
            public override Tensor forward(Tensor x) => attention.forward(c_attn.forward(x));
        }
        """, "or give one of the fields another [ComponentName]");

    [Fact]
    public void PEFT0005_DuplicateDefaultTarget() => AssertDiagnostic("PEFT0005", Sources.Usings + """
        [DefaultTargets("LORA", "q_proj", [|"q_proj"|])]
        public sealed partial class Arch : IArchitecture
        {
            public string ModelType => "llama";
            public IReadOnlyList<TaskType> SupportedTasks { get; } = [];
            public ModelConfig ParseConfig(JsonElement json, string source) => throw new NotSupportedException();
            public PreTrainedModel Build(ModelConfig config, TaskType task) => throw new NotSupportedException();
        }
        """, "names 'q_proj' more than once");

    [Fact]
    public void PEFT0006_NotAModule() => AssertDiagnostic("PEFT0006", Sources.Usings + """
        [TargetModules]
        public partial class [|Settings|]
        {
        }
        """, "does not derive from TorchSharp's torch.nn.Module; derive it from Module<Tensor, Tensor>");

    [Fact]
    public void PEFT0007_NotAnArchitecture() => AssertDiagnostic("PEFT0007", Sources.Usings + """
        [DefaultTargets("LORA", "c_attn")]
        public partial class [|Gpt2Plugin|]
        {
        }
        """, "does not implement Peft.Plugins.IArchitecture; implement IArchitecture, or remove the attribute");

    [Fact]
    public void PEFT0008_DefaultTargetsHandWritten() => AssertDiagnostic("PEFT0008", Sources.Usings + """
        [DefaultTargets("LORA", "c_attn")]
        public sealed partial class Gpt2Architecture : IArchitecture
        {
            public IReadOnlyDictionary<string, IReadOnlyList<string>> [|DefaultTargets|] => new Dictionary<string, IReadOnlyList<string>>();
            public string ModelType => "gpt2";
            public IReadOnlyList<TaskType> SupportedTasks { get; } = [];
            public ModelConfig ParseConfig(JsonElement json, string source) => throw new NotSupportedException();
            public PreTrainedModel Build(ModelConfig config, TaskType task) => throw new NotSupportedException();
        }
        """, "delete the hand-written member");

    [Fact]
    public void PEFT0009_DefaultTargetsMethodGivenTwice() => AssertDiagnostic("PEFT0009", Sources.Usings + """
        [DefaultTargets("LORA", "c_attn")]
        [[|DefaultTargets("LORA", "c_proj")|]]
        public sealed partial class Gpt2Architecture : IArchitecture
        {
            public string ModelType => "gpt2";
            public IReadOnlyList<TaskType> SupportedTasks { get; } = [];
            public ModelConfig ParseConfig(JsonElement json, string source) => throw new NotSupportedException();
            public PreTrainedModel Build(ModelConfig config, TaskType task) => throw new NotSupportedException();
        }
        """, "give each method one [DefaultTargets]");

    [Fact]
    public void ValidInputsReportNothing()
    {
        var run = GeneratorHarness.Run(Sources.All.Values.ToArray());

        Assert.Empty(run.Result.Diagnostics);
        Assert.Empty(run.CompilationProblems);
    }

    /// <summary>
    /// Runs the generator and checks it reports exactly one diagnostic, <paramref name="id"/>, an
    /// error at the marked span of Input0.cs whose message contains <paramref name="fix"/>; and that
    /// the generated code adds no compiler error the input did not have (no cascade).
    /// </summary>
    private static void AssertDiagnostic(string id, string markup, string fix)
    {
        var (source, span) = Markup.Parse(markup);
        var inputErrors = GeneratorHarness.Compile(source).GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToList();

        var run = GeneratorHarness.Run(source);

        var diagnostic = Assert.Single(run.Result.Diagnostics);
        Assert.Equal(id, diagnostic.Id);
        Assert.Equal(DiagnosticSeverity.Error, diagnostic.Severity);
        Assert.Equal("Input0.cs", diagnostic.Location.GetLineSpan().Path);
        Assert.Equal(span, diagnostic.Location.SourceSpan);
        Assert.Contains(fix, diagnostic.GetMessage(), StringComparison.Ordinal);
        Assert.All(
            run.Output.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error),
            error => Assert.Contains(error.Id, inputErrors.Select(d => d.Id)));
    }
}
