#!/usr/bin/env bash
# Coverage-guided fuzzing of the untrusted-file readers with SharpFuzz + AFL++, for a bounded time, on one core.
#   fuzz/run.sh TARGET [SECONDS]      TARGET: safetensors | adapter-config | model-config (default 300 s)
# Needs afl++ (apt-get install afl++) and the local tool of fuzz/dotnet-tools.json (restored here).
# Findings go to fuzz/findings/TARGET/default/crashes; replay them with
#   dotnet fuzz/Peft.Fuzz/bin/Release/net10.0/Peft.Fuzz.dll TARGET --replay fuzz/findings/TARGET/default/crashes
# (the build output, not fuzz/out: instrumented code runs only under afl-fuzz)
set -euo pipefail
target=${1:?usage: fuzz/run.sh safetensors|adapter-config|model-config [seconds]}
seconds=${2:-300}
here=$(cd "$(dirname "$0")" && pwd)
out=$here/out
command -v afl-fuzz >/dev/null || { echo "afl-fuzz not found: apt-get install afl++" >&2; exit 2; }
cd "$here"
dotnet tool restore >/dev/null
dotnet build Peft.Fuzz -c Release --nologo -v q
# A copy to instrument (hard links: libtorch is a gigabyte), the build's own output left as built.
rm -rf "$out" && cp -al Peft.Fuzz/bin/Release/net10.0 "$out"
# SharpFuzz rewrites the library's own assemblies so that AFL++ sees which branches each input takes;
# each gets a file of its own first, so the rewrite cannot reach the build output through a link.
for assembly in Peft.dll Peft.Abstractions.dll Peft.Methods.dll Peft.Backbones.dll; do
  cp --remove-destination "Peft.Fuzz/bin/Release/net10.0/$assembly" "$out/$assembly"
  dotnet sharpfuzz "$out/$assembly" >/dev/null
done
mkdir -p findings && rm -rf "findings/$target"
# dotnet is not an AFL-built binary (AFL_SKIP_BIN_CHECK); SharpFuzz forks no server, so one core is used.
AFL_SKIP_BIN_CHECK=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 \
  afl-fuzz -i "corpus/$target" -o "findings/$target" -x "dict/$target.dict" -t 10000 -m none -V "$seconds" -- dotnet "$out/Peft.Fuzz.dll" "$target" \
  | grep -E "^\[\+\]|^\[!\]|stat" || true
# afl-fuzz ends the harness with a signal, so its scratch folders (one per forked run) are removed here.
rm -rf /dev/shm/peft-fuzz-* "${TMPDIR:-/tmp}"/peft-fuzz-* 2>/dev/null || true
stats=findings/$target/default/fuzzer_stats
[ -f "$stats" ] && grep -E "^(execs_done|execs_per_sec|corpus_count|saved_crashes|saved_hangs|run_time)" "$stats"
