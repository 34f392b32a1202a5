using Peft.Modeling;
using Peft.Plugins;
using Peft.Tuners;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.PromptLearning;

/// <summary>
/// A prompt-learning adapter: owns a <see cref="PromptEncoder"/> outside the model and rewrites each
/// forward pass's inputs (the reference's prompt-learning branches of <c>PeftModelFor*.forward</c>):
/// virtual token embeddings before the token embeddings, or key/value prefixes as the initial cache;
/// attention masks, labels and position ids extended to match. Classification heads train in full
/// as modules_to_save.
/// </summary>
/// <remarks>
/// Only the first step of a generation is rewritten: once the model holds a cache (or, for
/// encoder-decoder models with virtual tokens, an encoder output) the virtual tokens are already in it.
/// </remarks>
public sealed class PromptLearningAdapter : IAdapter
{
    /// <summary>The key under which the reference saves the prompts.</summary>
    public const string PromptEmbeddingsKey = "prompt_embeddings";

    private const string SavedKeyPrefix = "base_model.";

    private readonly PreTrainedModel _model;
    private readonly PromptLearningConfig _config;
    private readonly PromptEncoder _encoder;
    private readonly PromptLayout _layout;
    private readonly TaskType _task;
    private readonly IReadOnlyList<(string Path, ModulesToSaveWrapper Wrapper)> _saved;
    private bool _disabled;

    /// <summary>An adapter over <paramref name="model"/> (the config resolved with <see cref="PromptLearningConfig.ForModel"/>).</summary>
    public PromptLearningAdapter(PreTrainedModel model, string name, PromptLearningConfig config, PromptEncoder encoder,
        PromptLayout layout, IReadOnlyList<(string Path, ModulesToSaveWrapper Wrapper)> modulesToSave)
    {
        _model = model;
        Name = name;
        _config = config;
        _encoder = encoder;
        _layout = layout;
        _task = config.TaskType ?? model.Task;
        _saved = modulesToSave;
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public PeftConfig Config => _config;

    /// <inheritdoc />
    public nn.Module? OwnedModule => _encoder;

    /// <summary>The prompt encoder.</summary>
    public PromptEncoder Encoder => _encoder;

    /// <summary>
    /// False when the saved file cannot restore the training state: the reference saves the
    /// encoder's output (<c>prompt_embeddings</c>), not the network that computes it (P-tuning's
    /// mlp_head/lstm_head, prefix tuning's projection). Loaded adapters then hold the prompts themselves.
    /// </summary>
    public bool SavesTrainingState => !_encoder.Reparameterizes;

    /// <inheritdoc />
    public bool CanMerge => false;

    /// <summary>Points the modules_to_save wrappers at this adapter's copies, or back at the originals.</summary>
    public void SetActive(bool active) => ModulesToSave.SetActive(_saved, Name, active);

    /// <summary>Removes this adapter's modules_to_save copies.</summary>
    public void Remove() => ModulesToSave.Remove(_saved, Name);

    /// <inheritdoc />
    public bool Disabled
    {
        get => _disabled;
        set
        {
            _disabled = value;
            foreach (var (_, wrapper) in _saved) wrapper.Disabled = value;
        }
    }

    private int VirtualTokens => _config.NumVirtualTokens!.Value;

    /// <summary>Token types survive only where the reference keeps them (sequence and token classification).</summary>
    private bool KeepsTokenTypes => _task == TaskType.SequenceClassification || _task == TaskType.TokenClassification;

    /// <inheritdoc />
    public ModelInputs PrepareInputs(ModelInputs inputs)
    {
        if (_layout.IsEncoderDecoder)
        {
            return _config.Kind == PromptKind.Prefix ? DecoderPrefixes(inputs) : EncoderVirtualTokens(inputs);
        }
        if (HoldsCache(inputs)) return inputs;
        return _config.Kind == PromptKind.Prefix ? Prefixes(inputs) : VirtualTokenEmbeddings(inputs);
    }

    private ModelInputs Prefixes(ModelInputs inputs)
    {
        var batch = BatchSize(inputs);
        return inputs with
        {
            AttentionMask = PrependOnes(inputs.AttentionMask, batch),
            // The prefix occupies the first positions of the cache, so explicit positions move along.
            PositionIds = inputs.PositionIds is { } positions ? positions + VirtualTokens : null,
            TokenTypeIds = KeepsTokenTypes ? inputs.TokenTypeIds : null,
            PastKeyValues = PrefixCache(batch),
        };
    }

    private ModelInputs VirtualTokenEmbeddings(ModelInputs inputs)
    {
        var batch = BatchSize(inputs);
        var embeds = Embed(inputs);
        var labels = inputs.Labels;
        // Virtual tokens predict nothing. (The reference pads causal-LM labels only; its token
        // classification then fails on the length mismatch, so padding them too is the working choice.)
        if (labels is not null && (_task == TaskType.CausalLM || _task == TaskType.TokenClassification))
        {
            labels = torch.cat([torch.full(batch, VirtualTokens, Losses.IgnoreIndex, labels.dtype, labels.device), labels], dim: 1);
        }
        var tokenTypes = KeepsTokenTypes && inputs.TokenTypeIds is { } types
            ? torch.cat([torch.zeros(batch, VirtualTokens, types.dtype, types.device), types], dim: 1)
            : null;
        return inputs with
        {
            InputIds = null,
            InputsEmbeds = torch.cat([VirtualTokenPrompts(batch, embeds), embeds], dim: 1),
            AttentionMask = PrependOnes(inputs.AttentionMask, batch),
            Labels = labels,
            // The reference ignores explicit position ids with virtual tokens: the model counts from 0 over them.
            PositionIds = null,
            TokenTypeIds = tokenTypes,
        };
    }

    private ModelInputs EncoderVirtualTokens(ModelInputs inputs)
    {
        if (inputs.EncoderHiddenStates is { } encoded)
        {
            // Later decoding steps reuse the encoder's output, which includes the virtual tokens.
            var mask = inputs.AttentionMask;
            return mask is not null && mask.shape[1] + VirtualTokens == encoded.shape[1]
                ? inputs with { AttentionMask = PrependOnes(mask, encoded.shape[0]) }
                : inputs;
        }
        var batch = BatchSize(inputs);
        var embeds = Embed(inputs);
        return inputs with
        {
            InputIds = null,
            InputsEmbeds = torch.cat([VirtualTokenPrompts(batch, embeds), embeds], dim: 1),
            AttentionMask = PrependOnes(inputs.AttentionMask, batch),
            PositionIds = null,
            TokenTypeIds = null,
        };
    }

    /// <summary>A cache with entries means a later generation step: the virtual tokens are already in it.</summary>
    private static bool HoldsCache(ModelInputs inputs) => inputs.PastKeyValues is { Length: > 0 };

    private ModelInputs DecoderPrefixes(ModelInputs inputs)
    {
        if (HoldsCache(inputs)) return inputs;
        var batch = BatchSize(inputs);
        return inputs with
        {
            DecoderAttentionMask = PrependOnes(inputs.DecoderAttentionMask, batch),
            PositionIds = inputs.PositionIds is { } positions ? positions + VirtualTokens : null,
            TokenTypeIds = null,
            PastKeyValues = PrefixCache(batch),
        };
    }

    private Tensor Embed(ModelInputs inputs) =>
        inputs.InputsEmbeds ?? _model.InputEmbeddings.call(
            inputs.InputIds ?? throw new ArgumentException("Prompt learning needs input_ids or inputs_embeds."));

    /// <summary>The first num_virtual_tokens prompts (the encoder's, for encoder-decoder models), (batch, V, D).</summary>
    private Tensor VirtualTokenPrompts(long batch, Tensor embeds)
    {
        var prompts = _encoder.Prompts()[..VirtualTokens].to(embeds.dtype);
        return prompts.unsqueeze(0).expand(batch, -1, -1);
    }

    /// <summary>
    /// Per-layer key/value prefixes (batch, heads, V, head_dim) from the encoder's output (V, layers·2·token_dim),
    /// split as the reference's get_prompt splits it. With two submodules the reference doubles the
    /// table and hands each decoder layer the first pair of its group of four (the cross-attention
    /// pair is dropped), so layer i receives the prefixes of layer (2i mod layers).
    /// </summary>
    private KeyValueCache PrefixCache(long batch)
    {
        var heads = _config.NumAttentionHeads!.Value;
        var layers = _config.NumLayers!.Value;
        var submodules = _config.NumTransformerSubmodules ?? 1;
        var headDim = _config.TokenDim!.Value / heads;
        var dtype = _model.parameters().FirstOrDefault()?.dtype ?? ScalarType.Float32;
        var table = _encoder.Prompts().to(dtype)
            .view(1, VirtualTokens, layers * 2, heads, headDim)
            .expand(batch, -1, -1, -1, -1);
        if (submodules == 2) table = torch.cat([table, table], dim: 2);
        var stacked = table.permute(2, 0, 3, 1, 4);                          // (2·layers·s, B, H, V, D)
        var entries = new (Tensor Key, Tensor Value)[layers];
        for (int i = 0; i < layers; i++)
        {
            entries[i] = (stacked[2 * submodules * i], stacked[2 * submodules * i + 1]);
        }
        return new KeyValueCache(entries);
    }

    private Tensor? PrependOnes(Tensor? mask, long batch) =>
        mask is null ? null : torch.cat([torch.ones(batch, VirtualTokens, mask.dtype, mask.device), mask], dim: 1);

    private static long BatchSize(ModelInputs inputs) =>
        (inputs.InputIds ?? inputs.InputsEmbeds ?? throw new ArgumentException("Prompt learning needs input_ids or inputs_embeds.")).shape[0];

    /// <summary>The adapter's trainable parameters with their names relative to the PeftModel.</summary>
    public IEnumerable<(string Name, Parameter Parameter)> NamedParameters()
    {
        foreach (var (name, p) in _encoder.named_parameters()) yield return ($"prompt_encoder.{Name}.{name}", p);
        foreach (var (path, copy) in SavedCopies())
        {
            foreach (var (name, p) in copy.named_parameters()) yield return ($"{SavedKeyPrefix}{path}.modules_to_save.{Name}.{name}", p);
        }
    }

    private IEnumerable<(string Path, nn.Module Copy)> SavedCopies()
    {
        foreach (var (path, wrapper) in _saved)
        {
            if (wrapper.Copies.TryGetValue(Name, out var copy)) yield return (path, copy);
        }
    }

    /// <inheritdoc />
    public void MarkTrainable()
    {
        foreach (var (_, p) in NamedParameters()) p.requires_grad = true;
    }

    /// <summary>
    /// <c>prompt_embeddings</c> (the encoder's output for every virtual token, or the embedding
    /// itself in inference mode) and the modules_to_save copies under <c>base_model.&lt;path&gt;</c>.
    /// </summary>
    public IReadOnlyDictionary<string, Tensor> GetStateDict()
    {
        var state = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        using (torch.no_grad())
        {
            state[PromptEmbeddingsKey] = _encoder.Prompts().detach();
        }
        foreach (var (path, copy) in SavedCopies())
        {
            foreach (var (name, p) in copy.named_parameters()) state[$"{SavedKeyPrefix}{path}.{name}"] = p;
        }
        return state;
    }

    /// <inheritdoc />
    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state, string source)
    {
        if (!state.TryGetValue(PromptEmbeddingsKey, out var prompts))
        {
            throw new InvalidDataException($"{source}: a {_config.PeftType} adapter needs the tensor '{PromptEmbeddingsKey}'; the file has {string.Join(", ", state.Keys.Take(5))}.");
        }
        _encoder.LoadPromptEmbeddings(prompts, source);
        var known = new HashSet<string>(StringComparer.Ordinal) { PromptEmbeddingsKey };
        using var noGrad = torch.no_grad();
        foreach (var (path, copy) in SavedCopies())
        {
            foreach (var (name, p) in copy.named_parameters())
            {
                var key = $"{SavedKeyPrefix}{path}.{name}";
                known.Add(key);
                if (!state.TryGetValue(key, out var value))
                {
                    throw new InvalidDataException($"{source}: the adapter has no tensor '{key}' for the trained copy of '{path}' (modules_to_save).");
                }
                if (!value.shape.SequenceEqual(p.shape))
                {
                    throw new InvalidDataException(
                        $"{source}: '{key}' has shape [{string.Join(", ", value.shape)}] but the model expects [{string.Join(", ", p.shape)}].");
                }
                p.copy_(value);
            }
        }
        var unknown = state.Keys.Where(k => !known.Contains(k)).ToList();
        if (unknown.Count > 0)
        {
            throw new InvalidDataException(
                $"{source}: {unknown.Count} tensor(s) do not fit the model, e.g. '{unknown[0]}'. Was the adapter trained for another task or architecture?");
        }
    }
}
