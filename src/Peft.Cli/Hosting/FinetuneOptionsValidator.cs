using Microsoft.Extensions.Options;

namespace Peft.Cli.Hosting;

/// <summary>Reports every problem of <see cref="FinetuneOptions"/> at once, each naming its option.</summary>
public sealed class FinetuneOptionsValidator : IValidateOptions<FinetuneOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, FinetuneOptions options)
    {
        var problems = options.Problems().ToList();
        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}
