using System.Text.Json;
using Peft.Backbones.Gpt2;
using Peft.Modeling;
using Peft.Plugins;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.PromptLearning;

/// <summary>Small randomly initialised models for prompt-learning tests.</summary>
internal static class TinyModels
{
    public static Gpt2Config Gpt2Config(int vocab = 16, int layers = 2, int heads = 2, int embd = 8) => new()
    {
        ModelType = "gpt2",
        VocabSize = vocab,
        NEmbd = embd,
        NHead = heads,
        NLayer = layers,
        NPositions = 64,
        PadTokenId = 0,
        ResidPdrop = 0,
        EmbdPdrop = 0,
        AttnPdrop = 0,
        ClassifierDropout = 0,
    };

    public static PreTrainedModel Gpt2(TaskType task, long seed = 1, int vocab = 16)
    {
        torch.manual_seed(seed);
        var model = new Gpt2Architecture().Build(Gpt2Config(vocab), task);
        model.eval();
        return model;
    }

    public static PeftModel Peft(PreTrainedModel model, PeftConfig config) => PeftModels.Default.GetPeftModel(model, config);

    public static Tensor Ids(params long[][] rows) => torch.tensor(rows.SelectMany(r => r).ToArray(), [rows.Length, rows[0].Length]);

    public static void AssertClose(Tensor expected, Tensor actual, double tolerance = 1e-5)
    {
        Assert.Equal(expected.shape, actual.shape);
        var difference = (expected.detach() - actual.detach()).abs().max().item<float>();
        Assert.True(difference <= tolerance, $"max |difference| {difference} > {tolerance}");
    }
}

/// <summary>An encoder-decoder stand-in with an embedding and a layout, for the input rewriting of prompt learning.</summary>
internal sealed class StubSeq2Seq : PreTrainedModel
{
    private readonly TorchSharp.Modules.Embedding shared;

    public StubSeq2Seq(int layers = 3, int heads = 2, int headDim = 4)
        : base("StubSeq2Seq", new ModelConfig { ModelType = "stub", VocabSize = 10 }, TaskType.Seq2SeqLM)
    {
        shared = nn.Embedding(10, heads * headDim);
        Layout = new PromptLayout(layers, heads, headDim, heads * headDim, IsEncoderDecoder: true, EncoderLayerCount: layers);
        RegisterComponents();
    }

    public PromptLayout Layout { get; }

    public override nn.Module<Tensor, Tensor> InputEmbeddings => shared;

    public override PromptLayout PromptLayout => Layout;

    public override ModelOutputs forward(ModelInputs inputs) => new() { Logits = torch.zeros(1) };
}

internal sealed class StubArchitecture : IArchitecture
{
    public string ModelType => "stub";

    public IReadOnlyList<TaskType> SupportedTasks => [TaskType.Seq2SeqLM];

    public IReadOnlyDictionary<string, IReadOnlyList<string>> DefaultTargets { get; } = new Dictionary<string, IReadOnlyList<string>>();

    public ModelConfig ParseConfig(JsonElement json, string source) => throw new NotSupportedException();

    public PreTrainedModel Build(ModelConfig config, TaskType task) => new StubSeq2Seq();
}
