using System.Diagnostics;

namespace ThirdPartyPlugin.Tests;

/// <summary>The [TargetModules] generator's diagnostics reach a project that has nothing but the Peft package.</summary>
public sealed class GeneratorDiagnosticsTests
{
    [Fact]
    public void AReadonlySlotFailsThePackageConsumersBuildWithPeft0003()
    {
        // Under samples/, so samples/nuget.config, Directory.Build.props and .targets apply as to any sample.
        var directory = Path.Combine(AppContext.BaseDirectory, "consumer-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        try
        {
            File.WriteAllText(Path.Combine(directory, "Consumer.csproj"), """
                <Project Sdk="Microsoft.NET.Sdk">
                  <PropertyGroup>
                    <GenerateDocumentationFile>false</GenerateDocumentationFile>
                  </PropertyGroup>
                  <ItemGroup>
                    <PackageReference Include="Peft" Version="$(PeftPackageVersion)" />
                  </ItemGroup>
                </Project>
                """);
            File.WriteAllText(Path.Combine(directory, "Broken.cs"), """
                using Peft;
                using static TorchSharp.torch;

                namespace Consumer;

                [TargetModules("proj")]
                public sealed partial class Broken : nn.Module<Tensor, Tensor>
                {
                    private readonly nn.Module<Tensor, Tensor> proj;

                    public Broken() : base("Broken")
                    {
                        proj = nn.Linear(4, 4);
                        RegisterComponents();
                    }

                    public override Tensor forward(Tensor input) => proj.call(input);
                }
                """);

            var (exitCode, output) = Run(Dotnet(), "build", Path.Combine(directory, "Consumer.csproj"), "-c", "Release", "--nologo",
                "--disable-build-servers", "-p:UseSharedCompilation=false", "-nodeReuse:false");

            Assert.True(exitCode != 0, "the broken consumer built:\n" + output);
            Assert.True(output.Contains("Broken.cs(9,48): error PEFT0003: Adapter slot 'proj' of 'Consumer.Broken' is the readonly field 'proj'; remove 'readonly'", StringComparison.Ordinal),
                "no PEFT0003 on the readonly slot:\n" + output);
        }
        finally
        {
            try { Directory.Delete(directory, recursive: true); } catch (IOException) { }
        }
    }

    private static string Dotnet() =>
        Environment.ProcessPath is { } host && Path.GetFileNameWithoutExtension(host) == "dotnet" ? host : "dotnet";

    private static (int ExitCode, string Output) Run(string fileName, params string[] arguments)
    {
        var start = new ProcessStartInfo(fileName) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        // The test host may run inside an MSBuild node's environment; let the child find its own SDK.
        foreach (var name in new[] { "MSBuildExtensionsPath", "MSBuildSDKsPath", "MSBUILD_EXE_PATH", "MSBuildLoadMicrosoftTargetsReadOnly" })
        {
            start.Environment.Remove(name);
        }
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {fileName}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException("the consumer's build took more than 5 minutes");
        }
        return (process.ExitCode, stdout.Result + stderr.Result);
    }
}
