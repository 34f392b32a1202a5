using Microsoft.Extensions.Options;
using Peft.Cli.Data;
using Peft.Cli.Hosting;
using Peft.Tokenizers;
using Spectre.Console;
using TorchSharp;

namespace Peft.Cli.Commands;

/// <summary><c>peft generate</c>: greedy or sampled generation with a causal or seq2seq LM and an optional adapter, from token ids or text.</summary>
public sealed class GenerateCommand(IOptions<GenerateOptions> options, PeftModels models, IAnsiConsole console) : ICliCommand
{
    /// <inheritdoc />
    public Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var settings = options.Value;
        var modelDirectory = CommandChecks.ExistingDirectory(settings.Model, "--model");
        var adapter = settings.Adapter is { Length: > 0 } given ? CommandChecks.ExistingDirectory(given, "--adapter") : null;
        if (settings.Prompt is { Length: > 0 } && settings.Text is { Length: > 0 }) throw new CommandLineException("--prompt and --text: give one of them.");
        // Text in, text out: the model's own tokenizer (tokenizer.json, or vocab.json + merges.txt).
        var tokenizer = settings.Text is { Length: > 0 } ? PretrainedTokenizer.FromDirectory(modelDirectory) : null;
        var prompt = tokenizer is not null
            ? tokenizer.Encode(settings.Text!, addSpecialTokens: false).Select(id => (long)id).ToArray()
            : ParseIds(settings.Prompt ?? throw new CommandLineException("--prompt \"id id id\" or --text \"...\" is required."));
        if (prompt.Length == 0) throw new CommandLineException("--text gives no tokens.");

        var (architecture, config) = models.ReadConfig(modelDirectory);
        var task = GenerationTask(architecture.SupportedTasks, adapter, modelDirectory);
        var tooLarge = prompt.FirstOrDefault(id => id >= config.VocabSize, -1);
        if (config.VocabSize > 0 && tooLarge >= 0)
        {
            throw new CommandLineException($"--prompt: token id {tooLarge} is past the vocabulary of {modelDirectory} ({config.VocabSize} ids, 0 to {config.VocabSize - 1}).");
        }

        var generation = GenerationFor(settings, modelDirectory, tokenizer);
        var model = models.LoadPretrained(modelDirectory, task, QuantizeOptionChecks.LoadOptions(settings));
        var ids = torch.tensor(prompt, [1, prompt.Length]);
        var generated = adapter is not null
            ? models.FromPretrained(model, adapter).Generate(ids, null, generation)
            : Generation.Generate(model, model.Config, ids, null, generation);
        var output = generated[0].data<long>().ToArray();
        console.WriteLine(tokenizer is not null ? tokenizer.Decode(output.Select(id => (int)id)) : string.Join(' ', output));
        return Task.FromResult(0);
    }

    /// <summary>
    /// The decoding the options ask for over the model's generation_config.json (as transformers' generate(**kwargs) over
    /// model.generation_config): greedy unless sampling is asked for; sampling options without it are refused, not ignored.
    /// </summary>
    private static GenerationOptions GenerationFor(GenerateOptions settings, string modelDirectory, PretrainedTokenizer? tokenizer)
    {
        var file = GenerationOptions.FromDirectory(modelDirectory);
        var doSample = settings.DoSample ?? file.DoSample;
        var given = new (string Name, object? Value)[] { ("--temperature", settings.Temperature), ("--top-k", settings.TopK), ("--top-p", settings.TopP), ("--seed", settings.Seed) }
            .Where(o => o.Value is not null).Select(o => o.Name).ToList();
        if (!doSample && given.Count > 0) throw new CommandLineException($"{string.Join(", ", given)}: sampling options need --do-sample true (decoding is greedy without it).");
        var options = file with
        {
            MaxNewTokens = settings.MaxNewTokens ?? file.MaxNewTokens,
            DoSample = doSample,
            Temperature = settings.Temperature ?? file.Temperature,
            TopK = settings.TopK ?? file.TopK,
            TopP = settings.TopP ?? file.TopP,
            Seed = settings.Seed,
            StopStrings = settings.Stop ?? [],
            Decode = tokenizer is null ? null : ids => tokenizer.Decode(ids),
        };
        // A bad value names the option, or the file's key when it came from there.
        string Name(string option, object? value, string key) => value is not null ? option : $"{Path.Combine(modelDirectory, "generation_config.json")}: {key}";
        if (options.MaxNewTokens <= 0) throw new CommandLineException($"{Name("--max-new-tokens", settings.MaxNewTokens, "max_new_tokens")} must be positive, got {options.MaxNewTokens}.");
        if (!(options.Temperature > 0)) throw new CommandLineException($"{Name("--temperature", settings.Temperature, "temperature")} must be positive, got {options.Temperature}.");
        if (options.TopK < 0) throw new CommandLineException($"{Name("--top-k", settings.TopK, "top_k")} must be 0 (all) or more, got {options.TopK}.");
        if (!(options.TopP > 0 && options.TopP <= 1)) throw new CommandLineException($"{Name("--top-p", settings.TopP, "top_p")} must be in (0, 1], got {options.TopP}.");
        if (settings.Stop is { Length: > 0 } && tokenizer is null) throw new CommandLineException("--stop: stop strings need --text (the model's tokenizer decodes the continuation).");
        return options;
    }

    /// <summary>Seq2seq when the architecture is an encoder-decoder, causal LM when it has a head for it, else an error naming --model.</summary>
    private TaskType GenerationTask(IReadOnlyList<TaskType> supported, string? adapter, string modelDirectory)
    {
        if (adapter is not null && models.ReadAdapterConfig(adapter).TaskType is { } adapterTask)
        {
            if (adapterTask != TaskType.CausalLM && adapterTask != TaskType.Seq2SeqLM)
            {
                throw new CommandLineException($"--adapter: {adapter} was trained for {adapterTask.Name}; generate needs a CAUSAL_LM or SEQ_2_SEQ_LM adapter.");
            }
            if (!supported.Contains(adapterTask))
            {
                throw new CommandLineException($"--model: {modelDirectory} has no {adapterTask.Name} head, which the adapter {adapter} was trained for.");
            }
            return adapterTask;
        }
        if (supported.Contains(TaskType.Seq2SeqLM)) return TaskType.Seq2SeqLM;
        if (supported.Contains(TaskType.CausalLM)) return TaskType.CausalLM;
        throw new CommandLineException($"--model: {modelDirectory} cannot generate (its architecture supports {string.Join(", ", supported.Select(t => t.Name))}).");
    }

    private static long[] ParseIds(string text)
    {
        var parts = text.Split([',', ' '], StringSplitOptions.RemoveEmptyEntries);
        var ids = new long[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            if (!long.TryParse(parts[i], out ids[i]) || ids[i] < 0)
            {
                throw new CommandLineException($"--prompt: '{parts[i]}' is not a token id; give non-negative integers separated by spaces or commas.");
            }
        }
        if (ids.Length == 0) throw new CommandLineException("--prompt is empty.");
        return ids;
    }
}
