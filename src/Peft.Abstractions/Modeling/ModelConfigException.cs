namespace Peft.Modeling;

/// <summary>A config.json that cannot be used: the message names the file and the key.</summary>
public sealed class ModelConfigException(string message, Exception? inner = null) : Exception(message, inner);
