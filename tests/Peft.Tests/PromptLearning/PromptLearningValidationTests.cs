using Peft.Methods.PrefixTuning;
using Peft.Methods.PromptTuning;
using Peft.Methods.PTuning;

namespace Peft.Tests.PromptLearning;

/// <summary>Configs that cannot be used fail with a <see cref="PeftConfigException"/> that names the field.</summary>
public class PromptLearningValidationTests
{
    private static PeftConfigException Fails(PeftConfig config, TaskType? task = null) =>
        Assert.Throws<PeftConfigException>(() => TinyModels.Peft(TinyModels.Gpt2(task ?? TaskType.CausalLM), config));

    [Theory]
    [InlineData(0)]
    [InlineData(-3)]
    public void NonPositiveVirtualTokensFail(int tokens)
    {
        Assert.Contains("num_virtual_tokens", Fails(new PromptTuningConfig { NumVirtualTokens = tokens }).Message);
        Assert.Contains("num_virtual_tokens", Fails(new PromptEncoderConfig { NumVirtualTokens = tokens }).Message);
        Assert.Contains("num_virtual_tokens", Fails(new PrefixTuningConfig { NumVirtualTokens = tokens }).Message);
    }

    [Fact]
    public void MissingVirtualTokensFail() =>
        Assert.Contains("num_virtual_tokens", Fails(new PromptTuningConfig()).Message);

    [Fact]
    public void PrefixWithTheWrongLayerCountFails()
    {
        var message = Fails(new PrefixTuningConfig { NumVirtualTokens = 4, NumLayers = 3 }).Message;
        Assert.Contains("num_layers", message);
        Assert.Contains("2 layers", message);
    }

    [Fact]
    public void PrefixWithTheWrongHeadCountFails()
    {
        var message = Fails(new PrefixTuningConfig { NumVirtualTokens = 4, NumAttentionHeads = 4 }).Message;
        Assert.Contains("num_attention_heads", message);
        Assert.Contains("2 key/value heads", message);
    }

    [Fact]
    public void PrefixWithTheWrongTokenDimFails() =>
        Assert.Contains("token_dim", Fails(new PrefixTuningConfig { NumVirtualTokens = 4, TokenDim = 12 }).Message);

    [Fact]
    public void VirtualTokensWiderThanTheEmbeddingFail()
    {
        var message = Fails(new PromptEncoderConfig { NumVirtualTokens = 4, TokenDim = 16 }).Message;
        Assert.Contains("token_dim", message);
        Assert.Contains("8 dimensions", message);
    }

    [Fact]
    public void TwoSubmodulesOnADecoderOnlyModelFail() =>
        Assert.Contains("num_transformer_submodules", Fails(new PromptTuningConfig { NumVirtualTokens = 4, NumTransformerSubmodules = 2 }).Message);

    [Fact]
    public void TextInitLongerThanTheVirtualTokensFails()
    {
        var config = new PromptTuningConfig
        {
            NumVirtualTokens = 2,
            PromptTuningInit = PromptTuningConfig.TextInit,
            PromptTuningInitText = "three tokens here",
            InitTokenIds = [3, 4, 5],
        };
        var message = Fails(config).Message;
        Assert.Contains("prompt_tuning_init_text", message);
        Assert.Contains("3 tokens", message);
        Assert.Contains("2 virtual tokens", message);
    }

    [Fact]
    public void TextInitWithoutTextFails() =>
        Assert.Contains("prompt_tuning_init_text", Fails(new PromptTuningConfig { NumVirtualTokens = 2, PromptTuningInit = "TEXT", InitTokenIds = [1] }).Message);

    [Fact]
    public void TextInitWithoutTokenIdsOrTokenizerFails() =>
        Assert.Contains("InitTokenIds", Fails(new PromptTuningConfig { NumVirtualTokens = 2, PromptTuningInit = "TEXT", PromptTuningInitText = "hi" }).Message);

    [Fact]
    public void UnknownInitsAndEncodersFail()
    {
        Assert.Contains("prompt_tuning_init", Fails(new PromptTuningConfig { NumVirtualTokens = 2, PromptTuningInit = "ZEROS" }).Message);
        Assert.Contains("encoder_reparameterization_type", Fails(new PromptEncoderConfig { NumVirtualTokens = 2, EncoderReparameterizationType = "GRU" }).Message);
        Assert.Contains("init_weights", Fails(new PrefixTuningConfig { NumVirtualTokens = 2, InitWeights = "ones" }).Message);
    }

    [Fact]
    public void ATaskTypeOtherThanTheModelsFails() =>
        Assert.Contains("task_type", Fails(new PromptTuningConfig { NumVirtualTokens = 2, TaskType = TaskType.SequenceClassification }).Message);
}
