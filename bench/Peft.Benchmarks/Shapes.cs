// The model shapes the benchmarks use: GPT-2 124M and a MiniLM-L6-shaped BERT classifier, random weights.
using Peft;
using Peft.Backbones.Bert;
using Peft.Backbones.Gpt2;
using Peft.Methods.Lora;
using Peft.Modeling;
using Peft.Tuners;
using TorchSharp;

internal static class Shapes
{
    public static PreTrainedModel Gpt2Small(AttentionImplementation attention = AttentionImplementation.Auto)
    {
        var config = new Gpt2Config { AttnImplementation = attention, ModelType = "gpt2", VocabSize = 50257, NEmbd = 768, NHead = 12, NLayer = 12, NPositions = 1024, AttnPdrop = 0, EmbdPdrop = 0, ResidPdrop = 0 };
        return new Gpt2Architecture().Build(config, TaskType.CausalLM);
    }

    public static PreTrainedModel MiniLm(AttentionImplementation attention = AttentionImplementation.Auto)
    {
        var config = new BertConfig
        {
            AttnImplementation = attention,
            ModelType = "bert", VocabSize = 30522, HiddenSize = 384, NumHiddenLayers = 6, NumAttentionHeads = 12, IntermediateSize = 1536,
            NumLabelsValue = 6, HiddenDropoutProb = 0, AttentionProbsDropoutProb = 0, PadTokenId = 0,
        };
        return new BertForSequenceClassification(config);
    }

    public static LoraConfig Lora(string[] targets, int rank, double alpha) => new() { R = rank, LoraAlpha = alpha, TargetModules = TargetModules.FromNames(targets) };

    /// <summary>The LoRA each shape is benchmarked with: all of GPT-2's linear layers at r = 16; MiniLM's attention and dense layers at r = 8.</summary>
    public static LoraConfig LoraFor(string shape) => shape == "gpt2" ? Lora(["c_attn", "c_proj", "c_fc"], 16, 32) : Lora(["query", "key", "value", "dense"], 8, 16);

    public static PreTrainedModel Build(string shape, AttentionImplementation attention = AttentionImplementation.Auto)
    {
        torch.manual_seed(0);
        return shape == "gpt2" ? Gpt2Small(attention) : MiniLm(attention);
    }

    /// <summary>Random inputs: GPT-2 prefill of 128 tokens (batch 1), MiniLM batch 32 × 48.</summary>
    public static ModelInputs Inputs(PreTrainedModel model, string shape, bool labels, int? batchOverride = null, int? lengthOverride = null)
    {
        var (batch, length) = shape == "gpt2" ? (batchOverride ?? 1, lengthOverride ?? 128) : (batchOverride ?? 32, lengthOverride ?? 48);
        var ids = torch.randint(0, model.Config.VocabSize, [batch, length]);
        var target = !labels ? null : model.Task == TaskType.CausalLM ? ids : torch.randint(0, model.Config.NumLabels, [batch]);
        return new ModelInputs { InputIds = ids, AttentionMask = torch.ones_like(ids), Labels = target };
    }
}
