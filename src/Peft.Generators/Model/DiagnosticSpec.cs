using Microsoft.CodeAnalysis;
using Peft.Generators.Diagnostics;
using Peft.Generators.Helpers;

namespace Peft.Generators.Model;

/// <summary>A diagnostic to report, as plain data: descriptor id, where, and the message arguments.</summary>
/// <param name="Id">The descriptor id (<c>PEFT0001</c>...), see <see cref="DiagnosticDescriptors"/>.</param>
/// <param name="Location">Where it points.</param>
/// <param name="MessageArgs">The arguments of the descriptor's message format.</param>
/// <remarks>
/// Pipeline models hold only strings, bools, ints and <see cref="EquatableArray{T}"/>: never an
/// ISymbol, SyntaxNode, Location or Compilation. A <see cref="Microsoft.CodeAnalysis.Location"/>
/// holds its syntax tree, and through it the compilation, so it is stored as
/// <see cref="LocationSpec"/> and rebuilt only when reported.
/// </remarks>
internal sealed record DiagnosticSpec(string Id, LocationSpec Location, EquatableArray<string> MessageArgs)
{
    /// <summary>Makes the diagnostic this spec describes.</summary>
    public Diagnostic ToDiagnostic() =>
        Diagnostic.Create(DiagnosticDescriptors.ById(Id), Location.ToLocation(), MessageArgs.ToArrayOfObjects());

    /// <summary>Describes a diagnostic of <paramref name="descriptor"/> at <paramref name="location"/>.</summary>
    public static DiagnosticSpec Create(DiagnosticDescriptor descriptor, Location? location, params string[] messageArgs) =>
        new(descriptor.Id, LocationSpec.From(location), new EquatableArray<string>(messageArgs));
}

/// <summary>Helpers for message arguments.</summary>
internal static class MessageArgs
{
    /// <summary>The arguments as the object array <see cref="Diagnostic.Create(DiagnosticDescriptor, Location, object[])"/> takes.</summary>
    public static object[] ToArrayOfObjects(this EquatableArray<string> args)
    {
        var result = new object[args.Count];
        for (var i = 0; i < args.Count; i++)
        {
            result[i] = args[i];
        }

        return result;
    }
}
