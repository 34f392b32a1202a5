using Peft.Cli.Hosting;

namespace Peft.Cli.Tests;

public class CommandLineTests
{
    [Fact]
    public void NoArgumentsRunsTheDefaultFinetune()
    {
        var (command, settings) = CommandLine.Parse([]);
        Assert.Equal("finetune", command);
        Assert.Empty(settings);
    }

    [Fact]
    public void OptionsBecomeConfigurationKeysOfTheCommandsSection()
    {
        var (command, settings) = CommandLine.Parse(["finetune", "--learning-rate", "0.002", "--epochs=3"]);
        Assert.Equal("finetune", command);
        Assert.Equal("0.002", settings["Peft:Finetune:LearningRate"]);
        Assert.Equal("3", settings["Peft:Finetune:Epochs"]);
    }

    [Fact]
    public void UnknownCommandListsTheCommands()
    {
        var error = Assert.Throws<CommandLineException>(() => CommandLine.Parse(["train"]));
        Assert.Contains("'train'", error.Message);
        Assert.Contains("finetune", error.Message);
    }

    [Fact]
    public void UnknownOptionListsTheCommandsOptions()
    {
        var error = Assert.Throws<CommandLineException>(() => CommandLine.Parse(["merge", "--lr", "1"]));
        Assert.Contains("--lr", error.Message);
        Assert.Contains("--adapter", error.Message);
    }

    [Fact]
    public void OptionWithoutValueIsAnError()
    {
        var error = Assert.Throws<CommandLineException>(() => CommandLine.Parse(["finetune", "--epochs"]));
        Assert.Contains("--epochs needs a value", error.Message);
    }

    [Fact]
    public void BareArgumentIsAnError()
    {
        var error = Assert.Throws<CommandLineException>(() => CommandLine.Parse(["finetune", "data.csv"]));
        Assert.Contains("data.csv", error.Message);
    }

    [Fact]
    public void FinetuneOptionProblemsNameTheOption()
    {
        var problems = new FinetuneOptions { Epochs = 0, Methods = "lora,magic", Model = "/no/such/dir" }.Problems().ToList();
        Assert.Contains(problems, p => p.Contains("--epochs"));
        Assert.Contains(problems, p => p.Contains("magic"));
        Assert.Contains(problems, p => p.Contains("--model") && p.Contains("/no/such/dir"));
    }
}
