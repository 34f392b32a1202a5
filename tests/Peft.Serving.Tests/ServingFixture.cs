using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Peft.Methods.Lora;
using Peft.Modeling;
using Peft.Tuners;
using TorchSharp;

namespace Peft.Serving.Tests;

/// <summary>
/// A tiny random GPT-2 with GPT-2's real vocabulary and tokenizer (and a ChatML chat template), four LoRA adapters
/// a1–a4 in an adapters directory, and a server on 127.0.0.1 serving them; plus an independent library copy of the
/// same model (the oracle: each request generated alone, greedy).
/// </summary>
public sealed class ServingFixture : IAsyncLifetime
{
    public const string ChatMlTemplate = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    public static readonly string[] Adapters = ["a1", "a2", "a3", "a4"];

    private readonly string _root = Path.Combine(Path.GetTempPath(), "peft-serving-" + Guid.NewGuid().ToString("N"));
    private readonly object _oracleGate = new();
    private WebApplication? _app;
    private PeftModel? _oracle;

    public string ModelDirectory => Path.Combine(_root, "tiny-gpt2");

    public string AdaptersDirectory => Path.Combine(_root, "adapters");

    public Uri BaseUrl { get; private set; } = new("http://127.0.0.1/");

    public ServedModel Served => (ServedModel)_app!.Services.GetService(typeof(ServedModel))!;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(ModelDirectory);
        var config = new JsonObject
        {
            ["model_type"] = "gpt2", ["architectures"] = new JsonArray("GPT2LMHeadModel"), ["vocab_size"] = 50257, ["n_embd"] = 32, ["n_head"] = 4,
            ["n_layer"] = 2, ["n_positions"] = 128, ["bos_token_id"] = 50256, ["eos_token_id"] = 50256, ["activation_function"] = "gelu_new",
            ["attn_pdrop"] = 0.0, ["embd_pdrop"] = 0.0, ["resid_pdrop"] = 0.0, ["layer_norm_epsilon"] = 1e-5, ["tie_word_embeddings"] = true,
        };
        File.WriteAllText(Path.Combine(ModelDirectory, "config.json"), config.ToJsonString());
        torch.manual_seed(1234);
        var (architecture, modelConfig) = PeftModels.Default.ReadConfig(ModelDirectory);
        var random = architecture.Build(modelConfig, TaskType.CausalLM);
        Peft.Checkpoints.ModelWeights.Save(ModelDirectory, random.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().contiguous()));
        Gpt2Files.Write(ModelDirectory);
        File.WriteAllText(Path.Combine(ModelDirectory, "tokenizer_config.json"), new JsonObject
        {
            ["eos_token"] = "<|endoftext|>", ["bos_token"] = "<|endoftext|>", ["chat_template"] = ChatMlTemplate,
        }.ToJsonString());

        // Four LoRA adapters with random B, so each really changes the output.
        var peft = PeftModels.Default.GetPeftModel(PeftModels.Default.LoadPretrained(ModelDirectory, TaskType.CausalLM), Lora(4), Adapters[0]);
        for (int i = 1; i < Adapters.Length; i++) peft.AddAdapter(Adapters[i], Lora(2 + 2 * i));
        using (torch.no_grad())
        {
            // Random B is small next to a random base; scaled up, every adapter picks different tokens.
            foreach (var (name, parameter) in peft.named_parameters().Where(p => p.name.Contains("lora_B"))) parameter.mul_(50);
        }
        peft.SavePretrained(AdaptersDirectory);

        _oracle = PeftModels.Default.FromPretrained(PeftModels.Default.LoadPretrained(ModelDirectory, TaskType.CausalLM), Path.Combine(AdaptersDirectory, "a1"), "a1");
        foreach (var name in Adapters.Skip(1)) _oracle.LoadAdapter(Path.Combine(AdaptersDirectory, name), name);

        var options = new PeftServerOptions
        {
            ModelDirectory = ModelDirectory,
            AdaptersDirectory = AdaptersDirectory,
            MaxResidentAdapters = 5,
            Limits = new ServingLimits { MaxPromptTokens = 64, MaxNewTokens = 16, DefaultMaxNewTokens = 8 },
            Scheduler = new Scheduling.SchedulerOptions { MaxBatchSize = 8, MaxQueueLength = 256 },
        };
        _app = ServingExtensions.CreateServer(options, "http://127.0.0.1:0");
        await _app.StartAsync();
        BaseUrl = new Uri(_app.Urls.First().TrimEnd('/') + "/");
    }

    private static LoraConfig Lora(int rank) => new()
    {
        TaskType = TaskType.CausalLM,
        R = rank,
        LoraAlpha = 2 * rank,
        TargetModules = TargetModules.FromNames(["c_attn", "c_fc"]),
        InitLoraWeights = false,
    };

    /// <summary>What one request gives alone: the prompt's ids generated greedily with the adapter, decoded.</summary>
    public string Expected(string adapter, IReadOnlyList<int> promptIds, int maxTokens)
    {
        lock (_oracleGate)
        {
            using var scope = torch.NewDisposeScope();
            var ids = torch.tensor(promptIds.Select(i => (long)i).ToArray(), [1, promptIds.Count]);
            var tokens = _oracle!.Generate(ids, null, [adapter], [new GenerationOptions { MaxNewTokens = maxTokens }]).Tokens[0];
            return Served.Text.Tokenizer.Decode(tokens.Select(t => (int)t));
        }
    }

    public async Task DisposeAsync()
    {
        if (_app is not null) await _app.DisposeAsync();
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
