using System.Text;

namespace Peft.Generators.Helpers;

/// <summary>
/// Writes C# source line by line with four-space indentation, so the emitter reads like the code
/// it produces (the shape of System.Text.Json's and LoggerMessage's writers).
/// </summary>
internal sealed class SourceWriter
{
    private const string IndentUnit = "    ";

    private readonly StringBuilder _builder = new();
    private int _indent;

    /// <summary>Writes <paramref name="line"/> at the current indentation, then a new line.</summary>
    public SourceWriter WriteLine(string line)
    {
        for (var i = 0; i < _indent; i++)
        {
            _builder.Append(IndentUnit);
        }

        _builder.Append(line).Append('\n');
        return this;
    }

    /// <summary>Writes an empty line (no trailing spaces).</summary>
    public SourceWriter WriteLine()
    {
        _builder.Append('\n');
        return this;
    }

    /// <summary>Writes <c>{</c> and indents what follows.</summary>
    public SourceWriter OpenBlock()
    {
        WriteLine("{");
        _indent++;
        return this;
    }

    /// <summary>Unindents and writes <c>}</c> followed by <paramref name="suffix"/> (e.g. <c>;</c>).</summary>
    public SourceWriter CloseBlock(string suffix = "")
    {
        _indent--;
        return WriteLine("}" + suffix);
    }

    /// <summary>Indents what follows by one more level until <see cref="Unindent"/>.</summary>
    public SourceWriter Indent()
    {
        _indent++;
        return this;
    }

    /// <summary>Undoes one <see cref="Indent"/>.</summary>
    public SourceWriter Unindent()
    {
        _indent--;
        return this;
    }

    /// <inheritdoc />
    public override string ToString() => _builder.ToString();
}
