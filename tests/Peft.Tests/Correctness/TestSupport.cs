using Microsoft.Extensions.Logging;
using Peft.Checkpoints;
using Peft.Modeling;
using Peft.Tests.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.Correctness;

/// <summary>Collects the library's warnings (PeftLog) raised inside a test.</summary>
internal sealed class CapturedWarnings : ILogger, IDisposable
{
    private readonly IDisposable _scope;
    private readonly List<string> _messages = [];

    public CapturedWarnings() => _scope = PeftLog.Use(this);

    public IReadOnlyList<string> Messages => _messages;

    public bool Any(string fragment) => _messages.Any(m => m.Contains(fragment, StringComparison.Ordinal));

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        _messages.Add(formatter(state, exception));

    public void Dispose() => _scope.Dispose();
}

/// <summary>The tiny reference models and the inputs the correctness tests run.</summary>
internal static class TinyFixtures
{
    public static string Model(string name) => Fixtures.Path("models", name);

    public static PreTrainedModel Load(string name, TaskType task) => PeftModels.Default.LoadPretrained(Model(name), task);

    public static Tensor Ids() => torch.tensor(new long[] { 3, 5, 7, 2, 9, 1, 4, 8, 6, 2 }, [2, 5]);

    public static Tensor Logits(nn.Module<ModelInputs, ModelOutputs> model, Tensor? ids = null)
    {
        using var noGrad = torch.no_grad();
        return model.call(new ModelInputs { InputIds = ids ?? Ids() }).Logits.detach().clone();
    }

    public static float MaxDifference(Tensor a, Tensor b) => (a - b).abs().max().item<float>();

    public static IReadOnlyDictionary<string, Tensor> SavedTensors(string directory) => SafeTensors.Load(Path.Combine(directory, "adapter_model.safetensors"));
}
