using Peft.Methods.PTuning;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.PromptLearning;

/// <summary>
/// P-tuning's LSTM encoder against a hand-written LSTM, in train and eval mode, with and without
/// autograd. TorchSharp 0.107's float32 <c>nn.LSTM</c> is wrong under no_grad on AVX-512 CPUs
/// (oneDNN's inference kernel); these catch that, or a later TorchSharp that brings it back.
/// </summary>
public class LstmKernelTests
{
    public static TheoryData<int, int, int, int> Shapes => new()
    {
        { 3, 8, 6, 2 },
        { 10, 32, 16, 2 },
        { 20, 64, 48, 1 },
        { 7, 40, 24, 3 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void TheEncoderEqualsAHandWrittenLstmInEveryMode(int tokens, int dim, int hidden, int layers)
    {
        torch.manual_seed(tokens * 1000 + dim);
        var encoder = new PTuningEncoder(new PromptEncoderConfig
        {
            NumVirtualTokens = tokens,
            TokenDim = dim,
            EncoderHiddenSize = hidden,
            EncoderNumLayers = layers,
            NumTransformerSubmodules = 1,
            EncoderReparameterizationType = PromptEncoderConfig.Lstm,
        });
        var parameters = encoder.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach());
        var indices = torch.arange(tokens).unsqueeze(0);
        var expected = HandWritten(parameters, indices, layers);

        foreach (var training in new[] { true, false })
        {
            encoder.train(training);
            foreach (var grad in new[] { true, false })
            {
                using var mode = torch.set_grad_enabled(grad);
                var actual = encoder.forward(indices);
                var prompts = encoder.Prompts();
                var label = $"train={training}, grad={grad}";
                AssertClose(expected, actual, label);
                AssertClose(expected[0], prompts, label + " (Prompts)");
            }
        }
    }

    private static void AssertClose(Tensor expected, Tensor actual, string mode)
    {
        var difference = (expected - actual.detach()).abs().max().item<float>();
        Assert.True(difference <= 1e-5, $"{mode}: max |difference| {difference} > 1e-5");
    }

    /// <summary>Embedding, a bidirectional multi-layer LSTM from its gate equations, then the MLP head.</summary>
    private static Tensor HandWritten(Dictionary<string, Tensor> p, Tensor indices, int layers)
    {
        using var noGrad = torch.no_grad();
        var x = p["embedding.weight"][indices[0]];                                   // (V, D)
        for (int layer = 0; layer < layers; layer++)
        {
            var forward = Direction(p, x, $"l{layer}", reverse: false);
            var backward = Direction(p, x, $"l{layer}_reverse", reverse: true);
            x = torch.cat([forward, backward], dim: 1);                                // (V, 2H)
        }
        var h = torch.nn.functional.relu(torch.nn.functional.linear(x, p["mlp_head.0.weight"], p["mlp_head.0.bias"]));
        return torch.nn.functional.linear(h, p["mlp_head.2.weight"], p["mlp_head.2.bias"]).unsqueeze(0);
    }

    private static Tensor Direction(Dictionary<string, Tensor> p, Tensor x, string suffix, bool reverse)
    {
        var wIh = p[$"lstm_head.weight_ih_{suffix}"];
        var wHh = p[$"lstm_head.weight_hh_{suffix}"];
        var bias = p[$"lstm_head.bias_ih_{suffix}"] + p[$"lstm_head.bias_hh_{suffix}"];
        var hidden = wHh.shape[1];
        var h = torch.zeros(hidden);
        var c = torch.zeros(hidden);
        var steps = (int)x.shape[0];
        var outputs = new Tensor[steps];
        for (int s = 0; s < steps; s++)
        {
            var t = reverse ? steps - 1 - s : s;
            var gates = torch.mv(wIh, x[t]) + torch.mv(wHh, h) + bias;               // i, f, g, o
            var chunks = gates.chunk(4);
            var i = chunks[0].sigmoid();
            var f = chunks[1].sigmoid();
            var g = chunks[2].tanh();
            var o = chunks[3].sigmoid();
            c = f * c + i * g;
            h = o * c.tanh();
            outputs[t] = h;
        }
        return torch.stack(outputs);
    }
}
