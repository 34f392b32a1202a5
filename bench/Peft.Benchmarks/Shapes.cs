// The model shapes the benchmarks use: GPT-2 124M, a BLOOM of GPT-2 small's size and a MiniLM-L6-shaped BERT
// classifier, random weights.
using Peft;
using Peft.Backbones.Bert;
using Peft.Backbones.Bloom;
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

    /// <summary>GPT-2 small's sizes with BLOOM's attention (ALiBi: on the fused path an additive (B, H, T, S) mask).</summary>
    public static PreTrainedModel BloomSmall(AttentionImplementation attention = AttentionImplementation.Auto)
    {
        var config = new BloomConfig { AttnImplementation = attention, ModelType = "bloom", VocabSize = 50257, HiddenSize = 768, NHead = 12, NLayer = 12 };
        return new BloomArchitecture().Build(config, TaskType.CausalLM);
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
    public static LoraConfig LoraFor(string shape) => shape switch
    {
        "gpt2" => Lora(["c_attn", "c_proj", "c_fc"], 16, 32),
        "bloom" => Lora(["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"], 16, 32),
        _ => Lora(["query", "key", "value", "dense"], 8, 16),
    };

    public static PreTrainedModel Build(string shape, AttentionImplementation attention = AttentionImplementation.Auto)
    {
        torch.manual_seed(0);
        return shape switch { "gpt2" => Gpt2Small(attention), "bloom" => BloomSmall(attention), _ => MiniLm(attention) };
    }

    /// <summary>Random inputs: GPT-2 and BLOOM prefill of 128 tokens (batch 1), MiniLM batch 32 × 48.</summary>
    public static ModelInputs Inputs(PreTrainedModel model, string shape, bool labels, int? batchOverride = null, int? lengthOverride = null)
    {
        var (batch, length) = shape is "gpt2" or "bloom" ? (batchOverride ?? 1, lengthOverride ?? 128) : (batchOverride ?? 32, lengthOverride ?? 48);
        var ids = torch.randint(0, model.Config.VocabSize, [batch, length]);
        var target = !labels ? null : model.Task == TaskType.CausalLM ? ids : torch.randint(0, model.Config.NumLabels, [batch]);
        return new ModelInputs { InputIds = ids, AttentionMask = torch.ones_like(ids), Labels = target };
    }
}
