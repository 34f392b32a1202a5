#!/usr/bin/env bash
# A NuGet consumer outside the repository: a fresh console project that takes Peft only from the
# packages scripts/pack.sh made (artifacts/packages, through a nuget.config written here), compiles
# each C# snippet of README.md's "Use" section unchanged as its Program.cs, and runs it on the tiny
# reference models (models/gpt2, adapters/...). Proves the packages alone work, TorchSharp's
# Debian 12 fix (buildTransitive) included. Prints "Failed: F, Passed: P, Skipped: 0".
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
feed="$repo/artifacts/packages"
ls "$feed"/Peft.*.nupkg >/dev/null 2>&1 || { echo "consumer: no packages in $feed; run scripts/pack.sh first" >&2; exit 1; }

work="$(mktemp -d /tmp/peft-consumer.XXXXXX)"
trap 'rm -rf "$work"' EXIT
cd "$work"

cat > nuget.config <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="peft-local" value="$feed" />
    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" protocolVersion="3" />
  </packageSources>
  <packageSourceMapping>
    <packageSource key="peft-local"><package pattern="Peft" /><package pattern="Peft.*" /></packageSource>
    <packageSource key="nuget.org"><package pattern="*" /></packageSource>
  </packageSourceMapping>
</configuration>
XML
cat > Consumer.csproj <<'XML'
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFramework>net10.0</TargetFramework>
    <Nullable>enable</Nullable>
    <ImplicitUsings>enable</ImplicitUsings>
    <!-- A restore takes the newest pack every time (each pack has a version of its own). -->
    <RestoreForce>true</RestoreForce>
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="Peft" Version="0.1.0-dev.*" />
    <PackageReference Include="TorchSharp-cpu" Version="0.107.0" />
    <PackageReference Include="Microsoft.Extensions.Hosting" Version="11.0.0" />
  </ItemGroup>
</Project>
XML

# What the snippets load: the tiny GPT-2 of the reference fixtures and two of its LoRA adapters.
fixtures="$repo/tests/fixtures/hf-peft"
mkdir -p models adapters
cp -r "$fixtures/models/gpt2-clm" models/gpt2
cp -r "$fixtures/cases/gpt2-clm-lora/adapter" adapters/english
cp -r "$fixtures/cases/gpt2-clm-rslora/adapter" adapters/french

# Every ```csharp block between "## Use" and the next "## " heading, one file each.
python3 - "$repo/README.md" <<'PY'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
section = re.search(r"^## Use\n(.*?)(?=^## )", text, re.S | re.M).group(1)
blocks = re.findall(r"^```csharp\n(.*?)^```", section, re.S | re.M)
for i, block in enumerate(blocks, 1):
    open(f"snippet{i}.cs.txt", "w", encoding="utf-8").write(block)
print(f"consumer: {len(blocks)} snippets in README.md's Use section")
PY

passed=0; failed=0
for snippet in snippet*.cs.txt; do
  cp "$snippet" Program.cs
  if out=$(dotnet run -c Release --nologo 2>&1); then
    passed=$((passed + 1)); echo "consumer: PASS ${snippet%.cs.txt}: $(echo "$out" | tail -1)"
  else
    failed=$((failed + 1)); echo "consumer: FAIL ${snippet%.cs.txt}"; echo "$out" | tail -30
  fi
done
echo "Failed: $failed, Passed: $passed, Skipped: 0 - README snippets in a NuGet consumer"
[ "$failed" -eq 0 ]
