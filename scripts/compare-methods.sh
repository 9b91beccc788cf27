#!/usr/bin/env bash
# compare-methods.sh: full fine-tuning vs LoRA vs bottleneck adapter on one
# downstream task, measured with deltactl itself.
#
# Usage (from anywhere inside the repository):
#
#   scripts/compare-methods.sh [OUTDIR]
#
# It builds ./cmd/deltactl, converts Poem Sentiment (testdata/poem_sentiment,
# CC BY 4.0) to prompt/completion JSONL with scripts/poem-sentiment-jsonl.sh,
# trains each method on the train split from the bundled base
# (testdata/tinyllama), pushes the base and each result to a private
# registry in OUTDIR, evaluates every result on the test split, and prints a
# markdown table (also written to OUTDIR/table.md):
#
#   trainable parameters   what the optimizer updates
#   weights bytes          size of the output folder's weights file
#                          (adapter_model.safetensors or model.safetensors)
#   registry bytes         what `deltactl push --base` stores for it
#                          (`--full` for the full fine-tune: only the changed
#                          bits, XOR against the base and compressed)
#   train s                seconds in the training loop (deltactl's summary)
#   peak RSS               Maximum resident set size of the `deltactl train`
#                          process (/usr/bin/time -v), model load and save
#                          included
#   test loss / accuracy   `deltactl eval` on the test split: mean
#                          cross-entropy per completion byte, and greedy
#                          exact match of the whole completion
#
# Knobs (environment): STEPS (200), BATCH (8), SEQ (144, enough for the
# longest verse), THREADS (2), SEED (0), LR_FULL (1e-3), LR_LORA (5e-3),
# LR_ADAPTER (5e-3), RANK (8), ADAPTER_SIZE (16).
# With the defaults it takes about 2 minutes on 2 cores.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$(mktemp -d "${TMPDIR:-/tmp}/compare-methods.XXXXXX")}
mkdir -p "$out"
out=$(cd "$out" && pwd)
STEPS=${STEPS:-200} BATCH=${BATCH:-8} SEQ=${SEQ:-144} THREADS=${THREADS:-2} SEED=${SEED:-0}
LR_FULL=${LR_FULL:-1e-3} LR_LORA=${LR_LORA:-5e-3} LR_ADAPTER=${LR_ADAPTER:-5e-3}
RANK=${RANK:-8} ADAPTER_SIZE=${ADAPTER_SIZE:-16}
base="$root/testdata/tinyllama"
bin="$out/deltactl"
reg="$out/registry"
export XDG_CACHE_HOME="$out/cache" # keep the push hash cache private

echo "building deltactl -> $bin" >&2
(cd "$root" && go build -o "$bin" ./cmd/deltactl)

for split in train dev test; do
	sh "$root/scripts/poem-sentiment-jsonl.sh" "$root/testdata/poem_sentiment/$split.tsv" >"$out/$split.jsonl"
done

# field FILE NAME prints a top-level scalar of deltactl's indented --json output.
field() { sed -n 's/^  "'"$2"'": \(.*\)$/\1/p' "$1" | sed 's/,$//'; }

timer=()
if [ -x /usr/bin/time ]; then timer=(/usr/bin/time -v); fi

"$bin" --registry "$reg" push --json base:v1 "$base" >"$out/push-base.json"

rows=()
# The untrained base and the majority class give the floor the methods
# must beat.
"$bin" eval --base "$base" --data "$out/test.jsonl" --threads "$THREADS" --json >"$out/eval-base.json"
majority=$(sed -n 's/.*"completion":"\(.*\)"}$/\1/p' "$out/test.jsonl" | sort | uniq -c | sort -rn | awk 'NR == 1 { print $1 }')
records=$(wc -l <"$out/test.jsonl")
rows+=("| base (no training) | 0 | – | – | – | – | $(printf %.4f "$(field "$out/eval-base.json" loss)") | $(printf %.3f "$(field "$out/eval-base.json" accuracy)") |")

for method in full lora adapter; do
	case $method in
	full) lr=$LR_FULL extra=() ;;
	lora) lr=$LR_LORA extra=(--rank "$RANK" --alpha "$((2 * RANK))") ;;
	adapter) lr=$LR_ADAPTER extra=(--adapter-size "$ADAPTER_SIZE") ;;
	esac
	dir="$out/$method"
	rm -rf "$dir"
	echo "training $method ($STEPS steps, lr $lr)" >&2
	"${timer[@]}" "$bin" train --base "$base" --data "$out/train.jsonl" --method "$method" "${extra[@]}" \
		--steps "$STEPS" --batch "$BATCH" --seq "$SEQ" --lr "$lr" --warmup $((STEPS / 10)) \
		--threads "$THREADS" --seed "$SEED" --out "$dir" --json >"$out/train-$method.json" 2>"$out/train-$method.time"
	rss="n/a"
	if [ ${#timer[@]} -gt 0 ]; then
		rss=$(awk -F': ' '/Maximum resident set size/ { printf "%.0f MiB", $2 / 1024 }' "$out/train-$method.time")
	fi
	if [ "$method" = full ]; then
		weights="$dir/model.safetensors"
		"$bin" --registry "$reg" push --json --base base:v1 --full "$method:v1" "$dir" >"$out/push-$method.json"
		"$bin" eval --base "$dir" --data "$out/test.jsonl" --threads "$THREADS" --json >"$out/eval-$method.json"
	else
		weights="$dir/adapter_model.safetensors"
		"$bin" --registry "$reg" push --json --base base:v1 "$method:v1" "$dir" >"$out/push-$method.json"
		"$bin" eval --base "$base" --delta "$dir" --data "$out/test.jsonl" --threads "$THREADS" --json >"$out/eval-$method.json"
	fi
	rows+=("| $method | $(field "$out/train-$method.json" trainable_params) | $(wc -c <"$weights") | $(field "$out/push-$method.json" uploaded_bytes) | $(printf %.1f "$(field "$out/train-$method.json" seconds)") | $rss | $(printf %.4f "$(field "$out/eval-$method.json" loss)") | $(printf %.3f "$(field "$out/eval-$method.json" accuracy)") |")
done

{
	echo "Poem Sentiment (train $(wc -l <"$out/train.jsonl") verses, test $records), base testdata/tinyllama ($(wc -c <"$base/model.safetensors") bytes of weights), $STEPS steps x $BATCH x $SEQ positions, $THREADS threads, seed $SEED; lr full $LR_FULL, LoRA $LR_LORA (r $RANK, alpha $((2 * RANK)), q_proj+v_proj), adapter $LR_ADAPTER (m $ADAPTER_SIZE, relu). Majority class: $majority of $records test verses ($(awk -v a="$majority" -v b="$records" 'BEGIN { printf "%.3f", a / b }'))."
	echo
	echo "| method | trainable params | weights bytes | registry bytes | train s | peak RSS | test loss | test accuracy |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|"
	printf '%s\n' "${rows[@]}"
} | tee "$out/table.md"
echo "outputs in $out" >&2
