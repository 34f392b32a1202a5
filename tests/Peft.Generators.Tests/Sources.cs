namespace Peft.Generators.Tests;

/// <summary>Representative inputs, shared by the snapshot, caching and reflection tests.</summary>
internal static class Sources
{
    public const string Usings = """
        using System;
        using System.Collections.Generic;
        using System.Text.Json;
        using Peft;
        using Peft.Modeling;
        using Peft.Plugins;
        using TorchSharp;
        using TorchSharp.Modules;
        using TorchSharp.Utils;
        using static TorchSharp.torch;

        """;

    /// <summary>Named slots; a readonly non-slot field alongside.</summary>
    public const string PlainClass = Usings + """
        namespace Demo.Gpt2;

        [TargetModules("c_attn", "c_proj")]
        public sealed partial class Attention : nn.Module<Tensor, Tensor>
        {
            private nn.Module<Tensor, Tensor> c_attn;
            private nn.Module<Tensor, Tensor> c_proj;
            private readonly Dropout dropout;

            public Attention() : base(nameof(Attention))
            {
                c_attn = nn.Linear(8, 8);
                c_proj = nn.Linear(8, 8);
                dropout = nn.Dropout(0.1);
                RegisterComponents();
            }

            public override Tensor forward(Tensor x) => dropout.forward(c_proj.forward(c_attn.forward(x)));
        }
        """;

    /// <summary>No names: every non-readonly Module&lt;Tensor, Tensor&gt; field is a slot, nullable ones included; global namespace.</summary>
    public const string NoNames = Usings + """
        [TargetModules]
        public partial class Mlp : nn.Module<Tensor, Tensor>
        {
            private nn.Module<Tensor, Tensor> c_fc;
            private nn.Module<Tensor, Tensor>? c_proj;
            private readonly nn.Module<Tensor, Tensor> act;
            private LayerNorm ln;

            public Mlp() : base(nameof(Mlp))
            {
                c_fc = nn.Linear(8, 32);
                c_proj = nn.Linear(32, 8);
                act = nn.GELU();
                ln = nn.LayerNorm(8);
                RegisterComponents();
            }

            public override Tensor forward(Tensor x) => ln.forward(c_proj!.forward(act.forward(c_fc.forward(x))));
        }
        """;

    /// <summary>Slots registered under [ComponentName] names, which need not be C# identifiers.</summary>
    public const string ComponentName = Usings + """
        namespace Demo.Llama;

        [TargetModules("q_proj", "v_proj")]
        internal partial class SelfAttention : nn.Module<Tensor, Tensor>
        {
            [ComponentName(Name = "q_proj")]
            private nn.Module<Tensor, Tensor> query;

            [ComponentName(Name = "v_proj")]
            private nn.Module<Tensor, Tensor> value;

            public SelfAttention() : base(nameof(SelfAttention))
            {
                query = nn.Linear(8, 8);
                value = nn.Linear(8, 8);
                RegisterComponents();
            }

            public override Tensor forward(Tensor x) => query.forward(x) + value.forward(x);
        }
        """;

    /// <summary>A generic class nested in a generic class nested in a static class.</summary>
    public const string NestedGeneric = Usings + """
        namespace Demo.Nested;

        public static partial class Gpt2
        {
            public partial class Stack<TConfig> where TConfig : class
            {
                [TargetModules("c_attn")]
                internal sealed partial class Block<TCache> : nn.Module<Tensor, Tensor>
                {
                    private nn.Module<Tensor, Tensor> c_attn;

                    public Block() : base(nameof(Block<TCache>))
                    {
                        c_attn = nn.Linear(8, 8);
                        RegisterComponents();
                    }

                    public override Tensor forward(Tensor x) => c_attn.forward(x);
                }
            }
        }
        """;

    /// <summary>An architecture plugin whose DefaultTargets come from the attributes (one table empty, as mT5's IA3 feed-forward).</summary>
    public const string DefaultTargets = Usings + """
        namespace Demo.Plugins;

        [DefaultTargets("LORA", "q_proj", "v_proj")]
        [DefaultTargets("IA3", "k_proj", "v_proj", "down_proj")]
        [DefaultTargets("IA3_FEEDFORWARD")]
        public sealed partial class LlamaArchitecture : IArchitecture
        {
            public string ModelType => "llama";

            public IReadOnlyList<TaskType> SupportedTasks { get; } = [TaskType.CausalLM];

            public ModelConfig ParseConfig(JsonElement json, string source) => throw new NotSupportedException();

            public PreTrainedModel Build(ModelConfig config, TaskType task) => throw new NotSupportedException();
        }
        """;

    /// <summary>Every representative input, by name.</summary>
    public static readonly IReadOnlyDictionary<string, string> All = new Dictionary<string, string>
    {
        [nameof(PlainClass)] = PlainClass,
        [nameof(NoNames)] = NoNames,
        [nameof(ComponentName)] = ComponentName,
        [nameof(NestedGeneric)] = NestedGeneric,
        [nameof(DefaultTargets)] = DefaultTargets,
    };
}
