#!/usr/bin/env bash
# Packs the library projects into artifacts/packages with a version of its own
# (0.1.0-dev.<unix time>), so that NuGet's global cache never serves a stale build to a project
# that takes the packages from there (samples/ use the floating version 0.1.0-dev.*).
set -euo pipefail
cd "$(dirname "$0")/.."

out=artifacts/packages
version="0.1.0-dev.$(date +%s)"
rm -rf "$out"
mkdir -p "$out"
# PackageVersion only: the assemblies keep Version 0.1.0, so this build and `dotnet test`'s are one.
# The libraries a plugin author references; the `peft` tool (430 MB with libtorch) packs on its own:
# dotnet pack src/Peft.Cli -c Release
# Each package gets a .snupkg of symbols beside it; PEFT_PROJECT_URL, when set, becomes its project and repository URL.
for project in src/Peft.Abstractions src/Peft.Methods src/Peft.Backbones src/Peft src/Peft.Pretrained src/Peft.Tokenizers src/Peft.Serving src/Peft.Diffusion; do
  dotnet pack "$project" -c Release -o "$out" -p:PackageVersion="$version" -p:PeftProjectUrl="${PEFT_PROJECT_URL:-}" --nologo --verbosity quiet
done
echo "pack: $(ls "$out" | wc -l) packages, version $version, in $out"
