using System.Text.RegularExpressions;
using Peft.Tuners;

namespace Peft.Cli.Hosting;

/// <summary>
/// The value of <c>--target-modules</c>: <c>all-linear</c>; a regular expression (any of
/// <c>^$*+?()[]{}|\</c> in it), matched against the full module name as PEFT matches a string
/// <c>target_modules</c>; or comma-separated module names, each matching a module whose name is it
/// or ends with "." and it.
/// </summary>
public static class TargetModuleOption
{
    private static readonly char[] RegexCharacters = ['^', '$', '*', '+', '?', '(', ')', '[', ']', '{', '}', '|', '\\'];

    /// <summary>What is wrong with <paramref name="value"/>, or null: checked with the other options, before anything loads.</summary>
    public static string? Problem(string? value)
    {
        try
        {
            Parse(value);
            return null;
        }
        catch (CommandLineException e)
        {
            return e.Message.TrimEnd('.');
        }
    }

    /// <summary>The targets <paramref name="value"/> names; null for none given.</summary>
    /// <exception cref="CommandLineException">The regular expression does not parse, or the list names nothing.</exception>
    public static TargetModules? Parse(string? value)
    {
        if (string.IsNullOrWhiteSpace(value)) return null;
        var trimmed = value.Trim();
        if (trimmed == TargetModules.AllLinearValue) return TargetModules.FromPattern(TargetModules.AllLinearValue);
        if (trimmed.IndexOfAny(RegexCharacters) >= 0)
        {
            try
            {
                _ = new Regex(trimmed, RegexOptions.CultureInvariant);
            }
            catch (ArgumentException e)
            {
                throw new CommandLineException($"--target-modules: '{trimmed}' is not a regular expression ({e.Message}).");
            }
            return TargetModules.FromPattern(trimmed);
        }
        var names = trimmed.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (names.Length == 0) throw new CommandLineException($"--target-modules: '{value}' names no module.");
        return TargetModules.FromNames(names);
    }
}
