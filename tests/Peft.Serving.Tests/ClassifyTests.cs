using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Peft.Methods.Lora;
using Peft.Modeling;
using Peft.Tuners;
using TorchSharp;

namespace Peft.Serving.Tests;

/// <summary>
/// <c>/v1/classify</c> on a tiny BERT (the reference fixture, with a WordPiece vocabulary written for it) and two
/// SEQ_CLS LoRA adapters with their own heads and label names: each answer equals the adapter's own forward.
/// </summary>
public sealed class ClassifyTests : IAsyncLifetime
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "peft-classify-" + Guid.NewGuid().ToString("N"));
    private Microsoft.AspNetCore.Builder.WebApplication? _app;
    private Microsoft.AspNetCore.Builder.WebApplication? _keyed;
    private PeftModel? _oracle;

    private string ModelDirectory => Path.Combine(_root, "tiny-bert");

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(ModelDirectory);
        var fixture = Path.Combine(RepositoryRoot(), "tests", "fixtures", "hf-peft", "models", "bert-seqcls");
        foreach (var file in new[] { "config.json", "model.safetensors" }) File.Copy(Path.Combine(fixture, file), Path.Combine(ModelDirectory, file));
        // 128 ids: the five BERT specials, then "w5" ... "w127".
        File.WriteAllLines(Path.Combine(ModelDirectory, "vocab.txt"), ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", .. Enumerable.Range(5, 123).Select(i => $"w{i}")]);
        torch.manual_seed(5);
        var peft = PeftModels.Default.GetPeftModel(PeftModels.Default.LoadPretrained(ModelDirectory, TaskType.SequenceClassification), Lora(), "topics");
        peft.AddAdapter("moods", Lora());
        using (torch.no_grad())
        {
            foreach (var (_, parameter) in peft.named_parameters().Where(p => p.name.Contains("modules_to_save") || p.name.Contains("lora_B"))) parameter.add_(torch.randn_like(parameter));
        }
        var adapters = Path.Combine(_root, "adapters");
        peft.SavePretrained(adapters);
        WriteLabels(Path.Combine(adapters, "topics"), ["science", "sports"]);
        WriteLabels(Path.Combine(adapters, "moods"), ["happy", "sad"]);
        _oracle = PeftModels.Default.FromPretrained(PeftModels.Default.LoadPretrained(ModelDirectory, TaskType.SequenceClassification), Path.Combine(adapters, "topics"), "topics");
        _oracle.LoadAdapter(Path.Combine(adapters, "moods"), "moods");
        _app = ServingExtensions.CreateServer(new PeftServerOptions { ModelDirectory = ModelDirectory, AdaptersDirectory = adapters }, "http://127.0.0.1:0");
        await _app.StartAsync();
        _keyed = ServingExtensions.CreateServer(new PeftServerOptions
        {
            ModelDirectory = ModelDirectory,
            AdaptersDirectory = adapters,
            ApiKeys = new Dictionary<string, IReadOnlyList<string>> { ["k-topics"] = ["topics"], ["k-all"] = ["*"] },
        }, "http://127.0.0.1:0");
        await _keyed.StartAsync();
    }

    private static LoraConfig Lora() => new()
    {
        TaskType = TaskType.SequenceClassification,
        R = 4,
        LoraAlpha = 8,
        TargetModules = TargetModules.FromNames(["query", "value"]),
        InitLoraWeights = false,
    };

    private static void WriteLabels(string directory, string[] labels) =>
        File.WriteAllText(Path.Combine(directory, "config.json"), new JsonObject { ["id2label"] = new JsonObject([.. labels.Select((l, i) => KeyValuePair.Create(i.ToString(System.Globalization.CultureInfo.InvariantCulture), (JsonNode?)l))]) }.ToJsonString());

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (Directory.Exists(Path.Combine(directory.FullName, "tests", "fixtures", "hf-peft"))) return directory.FullName;
        }
        throw new DirectoryNotFoundException("tests/fixtures/hf-peft not found above " + AppContext.BaseDirectory);
    }

    private float[] Expected(string adapter, string text)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var tokenizer = Peft.Tokenizers.PretrainedTokenizer.FromDirectory(ModelDirectory);
        var ids = tokenizer.Encode(text).Select(i => (long)i).ToArray();
        _oracle!.SetAdapter(adapter);
        var logits = _oracle.call(new ModelInputs { InputIds = torch.tensor(ids, [1, ids.Length]) }).Logits;
        return torch.nn.functional.softmax(logits, -1)[0].data<float>().ToArray();
    }

    [Fact]
    public async Task Each_adapter_classifies_with_its_own_head_and_labels()
    {
        using var http = new HttpClient { BaseAddress = new Uri(_app!.Urls.First()) };
        string[] texts = ["w5 w17 w42", "w99 w100", "w7"];

        foreach (var (adapter, labels) in new[] { ("topics", new[] { "science", "sports" }), ("moods", ["happy", "sad"]) })
        {
            var response = await http.PostAsJsonAsync("v1/classify", new { model = adapter, input = texts });
            var data = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["data"]!.AsArray();

            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            for (int i = 0; i < texts.Length; i++)
            {
                var expected = Expected(adapter, texts[i]);
                var scores = labels.Select(l => data[i]!["scores"]![l]!.GetValue<double>()).ToArray();
                Assert.Equal(expected.Select(p => (double)p), scores, (a, b) => Math.Abs(a - b) < 1e-5);
                Assert.Equal(labels[Array.IndexOf(expected, expected.Max())], data[i]!["label"]!.GetValue<string>());
            }
        }
        var generation = await http.PostAsJsonAsync("v1/completions", new { model = "topics", prompt = "w5" });
        Assert.Equal(HttpStatusCode.BadRequest, generation.StatusCode);
        Assert.Contains("/v1/classify", await generation.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Api_keys_restrict_which_adapters_a_caller_may_use()
    {
        using var http = new HttpClient { BaseAddress = new Uri(_keyed!.Urls.First()) };
        async Task<HttpStatusCode> Classify(string? key, string model)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "v1/classify") { Content = JsonContent.Create(new { model, input = "w5 w6" }) };
            if (key is not null) request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
            return (await http.SendAsync(request)).StatusCode;
        }

        Assert.Equal(HttpStatusCode.Unauthorized, await Classify(null, "topics"));
        Assert.Equal(HttpStatusCode.Unauthorized, await Classify("wrong", "topics"));
        Assert.Equal(HttpStatusCode.OK, await Classify("k-topics", "topics"));
        Assert.Equal(HttpStatusCode.Forbidden, await Classify("k-topics", "moods"));
        Assert.Equal(HttpStatusCode.OK, await Classify("k-all", "moods"));
        using var models = new HttpRequestMessage(HttpMethod.Get, "v1/models");
        models.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", "k-topics");
        var listed = JsonNode.Parse(await (await http.SendAsync(models)).Content.ReadAsStringAsync())!["data"]!.AsArray().Select(m => m!["id"]!.GetValue<string>());
        Assert.Equal(["topics"], listed);
    }

    public async Task DisposeAsync()
    {
        if (_app is not null) await _app.DisposeAsync();
        if (_keyed is not null) await _keyed.DisposeAsync();
        Directory.Delete(_root, recursive: true);
    }
}
