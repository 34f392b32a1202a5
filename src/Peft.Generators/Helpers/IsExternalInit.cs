// Lets records and init accessors compile on netstandard2.0, which lacks this marker type.
namespace System.Runtime.CompilerServices;

internal static class IsExternalInit
{
}
