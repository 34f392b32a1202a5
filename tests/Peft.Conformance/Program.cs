// Runs the Hugging Face PEFT reference cases: dotnet run --project tests/Peft.Conformance -c Release -- <fixtures-dir> [case-glob ...]
using Peft.Conformance;

if (args.Length == 0 || args[0] is "-h" or "--help")
{
    Console.Error.WriteLine("usage: Peft.Conformance <fixtures-dir> [case-glob ...]");
    return 2;
}
var fixtures = args[0];
if (!Directory.Exists(Path.Combine(fixtures, "cases")))
{
    Console.Error.WriteLine($"{fixtures}: no cases/ folder; expected a directory laid out like tests/fixtures/hf-peft.");
    return 2;
}
var runner = new ConformanceRunner(fixtures);
int passed = 0, failed = 0, skipped = 0;
foreach (var name in runner.SelectCases(args[1..]))
{
    var result = runner.Run(name);
    Console.WriteLine(result);
    switch (result.Outcome)
    {
        case Outcome.Pass: passed++; break;
        case Outcome.Fail: failed++; break;
        default: skipped++; break;
    }
}
Console.WriteLine($"{passed} passed, {failed} failed, {skipped} skipped");
return failed > 0 ? 1 : 0;
