using Peft.Cli.Hosting;

namespace Peft.Cli.Tests;

public class CommandLineTests
{
    [Fact]
    public void NoArgumentsIsTheDefaultJob()
    {
        var parsed = CommandLine.Parse([]);
        Assert.Equal("finetune", parsed.Command);
        Assert.True(parsed.IsDefaultJob);
        Assert.Empty(parsed.Settings);
    }

    [Fact]
    public void OnlyGivenOptionsBecomeConfigurationKeysOfTheCommandsSection()
    {
        var parsed = CommandLine.Parse(["finetune", "--learning-rate", "0.002", "--epochs=3"]);
        Assert.Equal("finetune", parsed.Command);
        Assert.False(parsed.IsDefaultJob);
        Assert.Equal("0.002", parsed.Settings["Peft:Finetune:LearningRate"]);
        Assert.Equal("3", parsed.Settings["Peft:Finetune:Epochs"]);
        Assert.Equal(2, parsed.Settings.Count);
    }

    [Fact]
    public void RepeatedTextBecomesAnArray()
    {
        var parsed = CommandLine.Parse(["predict", "--adapter", "a", "--text", "one", "--text", "two"]);
        Assert.Equal("one", parsed.Settings["Peft:Predict:Text:0"]);
        Assert.Equal("two", parsed.Settings["Peft:Predict:Text:1"]);
    }

    [Fact]
    public void EveryOptionOfEveryCommandComesFromItsOptionsClass()
    {
        var root = CommandLine.Build();
        foreach (var spec in CommandCatalog.Commands)
        {
            var command = root.Subcommands.Single(c => c.Name == spec.Name);
            var names = command.Options.Select(o => o.Name).Where(n => n != "--help" && n != "-?").ToList();
            Assert.Equal(spec.Options.Select(CommandCatalog.OptionName), names.Where(n => n.StartsWith("--", StringComparison.Ordinal)));
        }
    }

    [Theory]
    [InlineData(new[] { "train" }, "'train'")]
    [InlineData(new[] { "merge", "--lr", "1" }, "--lr")]
    [InlineData(new[] { "finetune", "--epochs" }, "--epochs")]
    [InlineData(new[] { "finetune", "data.csv" }, "data.csv")]
    [InlineData(new[] { "finetune", "--epochs", "abc" }, "--epochs: 'abc' is not a whole number")]
    [InlineData(new[] { "finetune", "--learning-rate", "fast" }, "--learning-rate: 'fast' is not a number")]
    [InlineData(new[] { "finetune", "--on-bad-line", "ignore" }, "--on-bad-line: 'ignore' is not one of fail, skip")]
    [InlineData(new[] { "finetune", "--task", "translation" }, "--task: 'translation' is not one of classification, causal-lm")]
    public void BadCommandLinesAreOneLineNamingTheCulprit(string[] args, string expected)
    {
        var error = Assert.Throws<CommandLineException>(() => CommandLine.Parse(args));
        Assert.Contains(expected, error.Message);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void UnknownOptionListsTheCommandsOptions()
    {
        var error = Assert.Throws<CommandLineException>(() => CommandLine.Parse(["merge", "--lr", "1"]));
        Assert.Contains("--adapter", error.Message);
    }

    [Fact]
    public void FinetuneOptionProblemsNameTheOption()
    {
        var problems = new FinetuneOptions { Epochs = 0, Methods = "lora,magic", Model = "/no/such/dir", TargetModules = "(query" }.Problems().ToList();
        Assert.Contains(problems, p => p.StartsWith("--target-modules: '(query' is not a regular expression", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("--epochs"));
        Assert.Contains(problems, p => p.Contains("magic"));
        Assert.Contains(problems, p => p.Contains("--model") && p.Contains("/no/such/dir"));
    }

    [Fact]
    public void DefaultMethodsFollowTheTask()
    {
        Assert.Equal(["lora", "probe", "full"], new FinetuneOptions().MethodList);
        Assert.Equal(["lora", "full"], new FinetuneOptions { Task = "causal-lm" }.MethodList);
        Assert.DoesNotContain(new FinetuneOptions { Task = "causal-lm", Model = ".", Data = "x" }.Problems(), p => p.Contains("probe"));
    }

    [Fact]
    public void TargetModulesTakeNamesAllLinearOrARegex()
    {
        Assert.Equal(["query", "value"], TargetModuleOption.Parse("query, value")!.Names);
        Assert.True(TargetModuleOption.Parse("all-linear")!.IsAllLinear);
        var regex = TargetModuleOption.Parse(@".*\.attention\.self\.(query|value)")!;
        Assert.Null(regex.Names);
        Assert.True(regex.Matches("bert.encoder.layer.0.attention.self.query"));
        Assert.False(regex.Matches("bert.encoder.layer.0.attention.self.key"));
        var error = Assert.Throws<CommandLineException>(() => TargetModuleOption.Parse("(query"));
        Assert.Contains("--target-modules", error.Message);
        Assert.Null(TargetModuleOption.Parse(" "));
    }
}
