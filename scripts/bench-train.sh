#!/usr/bin/env bash
# bench-train.sh: LoRA training speed and memory on the published shapes of
# real models (seeded random BF16 weights; only the shapes are real), with
# the PyTorch reference from ../shared/bench when it is installed.
#
#   scripts/bench-train.sh [NAME:BATCH ...]
#
# Default shapes: smollm2-135m:4 llama-3.2-1b:2 (also llama-3.2-3b:1,
# llama-3.1-8b:1). Every run: LoRA r8 on q,k,v,o, seq 256, 2 threads,
# STEPS steps (default 4), --compute f32 and bf16 (COMPUTE="f32 bf16").
# Models are generated once into .cache/shapes (go run ./scripts/genshapes).
# Printed per run: tokens/s of wall time, CPU seconds per step (less noisy
# on a shared machine), peak RSS, achieved GFLOP/s, and the memory plan.
set -euo pipefail
cd "$(dirname "$0")/.."

STEPS=${STEPS:-4}
COMPUTE=${COMPUTE:-"f32 bf16"}
SHARED=${SHARED:-../shared}
shapes=("$@")
[ ${#shapes[@]} -gt 0 ] || shapes=(smollm2-135m:4 llama-3.2-1b:2)

mkdir -p .cache/shapes .cache/bin
go build -o .cache/bin/deltactl ./cmd/deltactl
go build -o .cache/bin/genshapes ./scripts/genshapes

peer=0
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
	peer=1
fi

echo "bench-train $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for spec in "${shapes[@]}"; do
	name=${spec%%:*}
	batch=${spec##*:}
	dir=.cache/shapes/$name
	[ -f "$dir/config.json" ] || .cache/bin/genshapes "$name" "$dir"
	for compute in $COMPUTE; do
		out=$(mktemp -d)
		log=$out.log
		if ! .cache/bin/deltactl train --base "$dir" --data "$dir/bench.jsonl" --method lora --rank 8 \
			--targets q_proj,k_proj,v_proj,o_proj --batch "$batch" --seq 256 --threads 2 --steps "$STEPS" \
			--compute "$compute" --out "$out/lora" --json >"$log" 2>&1; then
			echo "$name batch $batch $compute: FAILED"; cat "$log"; rm -rf "$out" "$log"; continue
		fi
		# One line from the JSON summary (no jq needed).
		awk -v name="$name" -v batch="$batch" -v compute="$compute" -v steps="$STEPS" '
			match($0, /"([a-z_]+)": *([-0-9.e+]+|true|false)/) {
				k = substr($0, RSTART, RLENGTH); sub(/^"/, "", k); split(k, kv, /": */); v[kv[1]] = kv[2]
			}
			END {
				printf "%-14s batch %d %-4s deltactl: %6.1f tok/s  %6.1f CPU s/step  peak RSS %5.2f GiB  %6.1f GFLOP/s  recompute %s\n",
					name, batch, compute, v["tokens_per_sec"], v["cpu_seconds"] / steps, v["peak_rss_bytes"] / 2^30, v["gflops"], v["recompute"]
			}' "$log"
		rm -rf "$out" "$log"
	done
	if [ $peer = 1 ]; then
		env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 \
			/usr/bin/time -f "%e s wall, %U+%S CPU s, peak RSS %M KiB" \
			/usr/bin/python3 "$SHARED/bench/torch_llama_ref.py" train-time "$dir" "$STEPS" "$batch" 256 2>&1 |
			sed "s/^/$name batch $batch PyTorch: /"
	else
		echo "$name batch $batch PyTorch: peer not installed (needs Debian python3-torch and libopenblas0-pthread: see $SHARED/bench/BASELINES.md)"
	fi
done
