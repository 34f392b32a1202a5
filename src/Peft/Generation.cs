using Peft.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft;

public sealed partial class PeftModel
{
    /// <summary>
    /// Greedy decoding with the KV cache (generate(do_sample=False)): the prompt runs once with the
    /// active adapter's virtual tokens or prefixes, then one token per step.
    /// </summary>
    /// <param name="inputIds">Prompt ids, (batch, seq).</param>
    /// <param name="attentionMask">Padding mask of the prompt, or null for all ones.</param>
    /// <param name="maxNewTokens">Tokens to add.</param>
    /// <returns>The prompt followed by the new tokens, (batch, seq + new).</returns>
    public Tensor Generate(Tensor inputIds, Tensor? attentionMask = null, int maxNewTokens = 20) =>
        Generation.Greedy(this, Model.Config, inputIds, attentionMask, maxNewTokens);
}

/// <summary>Greedy decoding for decoder-only models.</summary>
public static class Generation
{
    /// <summary>Greedy decoding of <paramref name="model"/> (a base model or a <see cref="PeftModel"/>).</summary>
    public static Tensor Greedy(nn.Module<ModelInputs, ModelOutputs> model, ModelConfig config, Tensor inputIds, Tensor? attentionMask, int maxNewTokens)
    {
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var mask = attentionMask ?? torch.ones_like(inputIds);
        var eos = config.EosTokenIds;
        var pad = config.PadTokenId ?? (eos.Count > 0 ? eos[0] : 0);
        var finished = torch.zeros(inputIds.shape[0], ScalarType.Bool, inputIds.device);
        var sequence = inputIds;
        KeyValueCache? cache = null;
        var step = new ModelInputs { InputIds = inputIds, AttentionMask = mask, UseCache = true };
        try
        {
            for (int i = 0; i < maxNewTokens; i++)
            {
                var output = model.call(step);
                cache = output.PastKeyValues;
                var next = output.Logits[.., -1].argmax(-1);
                next = torch.where(finished, torch.full_like(next, pad), next);
                sequence = torch.cat([sequence, next.unsqueeze(1)], dim: 1);
                foreach (var id in eos) finished = finished.logical_or(next.eq(id));
                if (finished.all().item<bool>()) break;
                // After the first step the cache holds any virtual tokens, so the mask is rebuilt from its length.
                var past = cache?.Length ?? sequence.shape[1] - 1;
                mask = torch.cat([PadMaskTo(mask, past), torch.ones(mask.shape[0], 1, mask.dtype, mask.device)], dim: 1);
                step = new ModelInputs { InputIds = next.unsqueeze(1), AttentionMask = mask, PastKeyValues = cache, UseCache = true };
            }
            return sequence.MoveToOuterDisposeScope();
        }
        finally
        {
            cache?.Dispose();
        }
    }

    /// <summary>Left-extends a mask with ones up to <paramref name="length"/> columns (virtual tokens are always attended).</summary>
    private static Tensor PadMaskTo(Tensor mask, long length) =>
        mask.shape[1] >= length ? mask : torch.cat([torch.ones(mask.shape[0], length - mask.shape[1], mask.dtype, mask.device), mask], dim: 1);
}
