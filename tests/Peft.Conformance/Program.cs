// Runs the Hugging Face PEFT reference cases:
// dotnet run --project tests/Peft.Conformance -c Release -- [--float64] <fixtures-dir> [case-glob ...]
// Development tool behind docs/COMPATIBILITY.md's "Float32 exactness" section (not run by CI):
// dotnet run --project tests/Peft.Conformance -c Release -- precision-sweep <fixtures-dir> gpt2|llama|t5 <seeds> <lengths> [keep-dir]
using Peft.Conformance;

if (args.Length > 0 && args[0] == "precision-sweep") return PrecisionSweep.Run(args[1..]);

var float64 = args.Contains("--float64");
var positional = args.Where(a => a != "--float64").ToArray();
if (positional.Length == 0 || positional[0] is "-h" or "--help" || positional.Any(a => a.StartsWith("--", StringComparison.Ordinal)))
{
    Console.Error.WriteLine("usage: Peft.Conformance [--float64] <fixtures-dir> [case-glob ...]");
    Console.Error.WriteLine("  --float64  our model, adapter and inputs in float64 against the float32 reference; a failing check");
    Console.Error.WriteLine("             prints |ours32 - ref|, |ours64 - ref| and |ours32 - ours64| and whether the gap is ours or rounding");
    Console.Error.WriteLine("             (attention: the float32 run's eager path in both, so that only the precision differs)");
    return 2;
}
var fixtures = positional[0];
if (!Directory.Exists(Path.Combine(fixtures, "cases")))
{
    Console.Error.WriteLine($"{fixtures}: no cases/ folder; expected a directory laid out like tests/fixtures/hf-peft.");
    return 2;
}
var runner = new ConformanceRunner(fixtures, float64: float64);
int passed = 0, failed = 0, gaps = 0, skipped = 0;
foreach (var name in runner.SelectCases(positional[1..]))
{
    var result = runner.Run(name);
    Console.WriteLine(result);
    switch (result.Outcome)
    {
        case Outcome.Pass: passed++; break;
        case Outcome.Fail: failed++; break;
        case Outcome.KnownGap: gaps++; break;
        default: skipped++; break;
    }
}
Console.WriteLine($"{passed} passed, {failed} failed, {gaps} known gaps, {skipped} skipped{(float64 ? " (float64)" : "")}");
return failed > 0 ? 1 : 0;
