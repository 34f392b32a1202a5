#!/usr/bin/env bash
# Installs what a fresh Debian/Ubuntu machine lacks for Peft for .NET. Idempotent; offline after it ran once.
set -euo pipefail

if ! command -v dotnet >/dev/null 2>&1; then
  echo "setup: the .NET 10 SDK is required (https://dot.net); 'dotnet' is not on PATH." >&2
  exit 1
fi

# Debian's fortunes corpus: the data of the CLI's default fine-tuning job.
if [ ! -d /usr/share/games/fortunes ] || [ -z "$(ls /usr/share/games/fortunes 2>/dev/null)" ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq fortunes >/dev/null
  else
    echo "setup: install Debian's 'fortunes' package (files under /usr/share/games/fortunes) for the default job." >&2
  fi
fi

# Debian's Fashion-MNIST: the data of the image job (finetune --task image-classification) and of its tests.
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null
  else
    echo "setup: install Debian's 'dataset-fashion-mnist' package (files under /usr/share/datasets/fashion-mnist) for the image job." >&2
  fi
fi

dotnet restore Peft.sln --verbosity quiet

# The packages samples/ build against (artifacts/packages, a fresh 0.1.0-dev.<unix time> each run).
bash scripts/pack.sh
