using Peft.Plugins;

namespace Peft;

/// <summary>
/// The architecture and method plugins available to a process, by <c>model_type</c> and
/// <c>peft_type</c>. Built by <c>services.AddPeft()</c> or, without a
/// host, <see cref="PeftRegistry.Default"/>.
/// </summary>
public sealed class PeftRegistry
{
    private readonly Dictionary<string, IArchitecture> _architectures = new(StringComparer.Ordinal);
    private readonly Dictionary<string, IPeftMethod> _methods = new(StringComparer.Ordinal);

    /// <summary>A registry holding the given plugins.</summary>
    /// <exception cref="InvalidOperationException">Two plugins claim the same model_type or peft_type.</exception>
    public PeftRegistry(IEnumerable<IArchitecture> architectures, IEnumerable<IPeftMethod> methods)
    {
        foreach (var architecture in architectures)
        {
            if (_architectures.TryGetValue(architecture.ModelType, out var existing) && existing.GetType() != architecture.GetType())
            {
                throw new InvalidOperationException(
                    $"model_type '{architecture.ModelType}' is registered twice: by {existing.GetType().FullName} and by {architecture.GetType().FullName}.");
            }
            _architectures[architecture.ModelType] = architecture;
        }
        foreach (var method in methods)
        {
            if (_methods.TryGetValue(method.PeftType.Name, out var existing) && existing.GetType() != method.GetType())
            {
                throw new InvalidOperationException(
                    $"peft_type '{method.PeftType}' is registered twice: by {existing.GetType().FullName} and by {method.GetType().FullName}.");
            }
            _methods[method.PeftType.Name] = method;
        }
    }

    /// <summary>The built-in methods and architectures, for use without dependency injection.</summary>
    public static PeftRegistry Default { get; } = new(BuiltIns.Architectures(), BuiltIns.Methods());

    /// <summary>Registered model types.</summary>
    public IReadOnlyCollection<string> ModelTypes => _architectures.Keys;

    /// <summary>Registered PEFT types.</summary>
    public IReadOnlyCollection<string> PeftTypes => _methods.Keys;

    /// <summary>The architecture for <paramref name="modelType"/>.</summary>
    /// <exception cref="KeyNotFoundException">No plugin owns it; the message lists those that exist.</exception>
    public IArchitecture Architecture(string modelType) =>
        _architectures.TryGetValue(modelType, out var architecture)
            ? architecture
            : throw new KeyNotFoundException(
                $"No architecture plugin for model_type '{modelType}'. {DescribeArchitectures()}");

    /// <summary>The method for <paramref name="peftType"/>.</summary>
    /// <exception cref="KeyNotFoundException">No plugin owns it; the message lists those that exist.</exception>
    public IPeftMethod Method(PeftType peftType) =>
        _methods.TryGetValue(peftType.Name, out var method)
            ? method
            : throw new KeyNotFoundException(
                $"No method plugin for peft_type '{peftType}'. {DescribeMethods()}");

    /// <summary>"Registered: a, b." or, for none, how to register the built-in ones (an empty registry is a set-up mistake).</summary>
    public string DescribeArchitectures() =>
        _architectures.Count == 0
            ? "No architecture is registered: call AddBuiltInBackbones() in AddPeft(...) (or AddBackbone<T>() for your own)."
            : $"Registered: {string.Join(", ", _architectures.Keys.Order())}.";

    /// <summary>"Registered: a, b." or, for none, how to register the built-in ones.</summary>
    public string DescribeMethods() =>
        _methods.Count == 0
            ? "No method is registered: call AddBuiltInMethods() in AddPeft(...) (or AddMethod<T>() for your own)."
            : $"Registered: {string.Join(", ", _methods.Keys.Order())}.";

    /// <summary>Whether a plugin owns <paramref name="modelType"/>.</summary>
    public bool HasArchitecture(string modelType) => _architectures.ContainsKey(modelType);

    /// <summary>Whether a plugin owns <paramref name="peftType"/>.</summary>
    public bool HasMethod(PeftType peftType) => _methods.ContainsKey(peftType.Name);
}
