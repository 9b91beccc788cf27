#!/usr/bin/env bash
# bench-train.sh: LoRA training speed and memory on the published shapes of
# real models (seeded random BF16 weights; only the shapes are real), side by
# side with the PyTorch peer from ../shared/bench, run in the same session.
#
#   scripts/bench-train.sh [NAME:BATCH ...]
#
# Default shapes: smollm2-135m:4 llama-3.2-1b:2 llama-3.2-3b:1 llama-3.1-8b:1.
# Every run: LoRA r8 on q,k,v,o, seq 256, 2 threads, STEPS steps (default 3),
# deltactl with --compute f32 and bf16 (COMPUTE="f32 bf16"), then the peer
# (PEER=0 skips it; it is installed once by scripts/install-torch-peer.sh, and
# skipped for a model whose float32 weights do not fit in memory). Models are
# generated once into .cache/shapes (go run ./scripts/genshapes).
#
# Both sides are measured in the steady state, the same way: a run of 1
# step and a run of 1+STEPS steps, the differences being STEPS steps without
# the model load and the first step (PyTorch's first step costs several later
# ones). Printed per run: tokens/s of those steps' wall time, their CPU
# seconds per step (all threads: steadier than wall time on a shared
# machine), peak RSS, and for deltactl the achieved GFLOP/s and the memory
# plan's choice; then deltactl's ratio to the peer in tokens/s and in CPU
# seconds per step.
set -euo pipefail
cd "$(dirname "$0")/.."

STEPS=${STEPS:-3}
COMPUTE=${COMPUTE:-"f32 bf16"}
SHARED=${SHARED:-../shared}
PEER=${PEER:-1}
shapes=("$@")
[ ${#shapes[@]} -gt 0 ] || shapes=(smollm2-135m:4 llama-3.2-1b:2 llama-3.2-3b:1 llama-3.1-8b:1)

mkdir -p .cache/shapes .cache/bin
go build -o .cache/bin/deltactl ./cmd/deltactl
go build -o .cache/bin/genshapes ./scripts/genshapes

# fresh_memory drops the page cache before a run, when root: PyTorch's
# allocator hands every step's buffers back to the system and faults them in
# again, and on a machine whose memory is full of cached model files (the 8B
# shape alone is 16 GB) that cost the peer up to 30% (SmolLM2: 149-172
# tokens/s against 210-223 after a drop). Done before every run of both
# sides, so neither starts with the other's files cached.
fresh_memory() {
	[ "$(id -u)" = 0 ] || return 0
	sync
	echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
}

# train_json DIR BATCH COMPUTE STEPS prints "tokens seconds cpu_seconds
# peak_rss_bytes gflops recompute" of one deltactl run (from its --json
# summary; no jq needed), or its output on failure.
train_json() {
	local out log rc=0
	out=$(mktemp -d)
	log=$out.log
	fresh_memory
	.cache/bin/deltactl train --base "$1" --data "$1/bench.jsonl" --method lora --rank 8 \
		--targets q_proj,k_proj,v_proj,o_proj --batch "$2" --seq 256 --threads 2 --steps "$4" \
		--compute "$3" --out "$out/lora" --json >"$log" 2>&1 || rc=$?
	if [ $rc = 0 ]; then
		awk 'match($0, /"([a-z_]+)": *([-0-9.e+]+|true|false)/) {
				k = substr($0, RSTART, RLENGTH); sub(/^"/, "", k); split(k, kv, /": */); v[kv[1]] = kv[2]
			}
			END { print v["tokens"], v["seconds"], v["cpu_seconds"], v["peak_rss_bytes"], v["gflops"], v["recompute"] }' "$log"
	else
		cat "$log"
	fi
	rm -rf "$out" "$log"
	return $rc
}

peer=0
if [ "$PEER" = 1 ]; then
	if [ ! -f "$SHARED/bench/torch_llama_ref.py" ]; then
		echo "PyTorch peer: $SHARED/bench/torch_llama_ref.py not found (SHARED=...)"
	elif bash scripts/install-torch-peer.sh; then
		peer=1
	fi
fi

echo "bench-train $(date -u +%Y-%m-%dT%H:%MZ), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GiB", $2/2^20}' /proc/meminfo), load average $(cut -d' ' -f1-3 /proc/loadavg)"
for spec in "${shapes[@]}"; do
	name=${spec%%:*}
	batch=${spec##*:}
	dir=.cache/shapes/$name
	[ -f "$dir/config.json" ] || .cache/bin/genshapes "$name" "$dir"
	for compute in $COMPUTE; do
		# Two runs, 1 and 1+STEPS steps: the differences are STEPS steps
		# in the steady state, without the load and the first step.
		if ! one=$(train_json "$dir" "$batch" "$compute" 1) || ! all=$(train_json "$dir" "$batch" "$compute" $((1 + STEPS))); then
			echo "$name batch $batch $compute: FAILED"; echo "$one${all:-}"; continue
		fi
		line=$(echo "$one $all" | awk -v name="$name" -v batch="$batch" -v compute="$compute" -v steps="$STEPS" '{
			# fields: tokens seconds cpu rss gflops recompute, for 1 step then for 1+steps
			tps = ($7 - $1) / ($8 - $2); cpu = ($9 - $3) / steps
			printf "%.3f %.3f %-14s batch %d deltactl %-4s %6.1f tok/s  %6.1f CPU s/step  peak RSS %5.2f GiB  %6.1f GFLOP/s  recompute %s\n",
				tps, cpu, name, batch, compute, tps, cpu, $10 / 2^30, $11 * tps / ($7 / $8), $12
		}')
		echo "${line#* * }"
		eval "ours_$compute=\"$(echo "$line" | cut -d' ' -f1-2)\""
	done
	[ $peer = 1 ] || continue
	# The peer holds the weights as float32: twice the BF16 file.
	need=$(du -sbL "$dir" | awk '{printf "%.0f", $1 * 2}')
	avail=$(awk '/MemAvailable/ {printf "%.0f", $2 * 1024}' /proc/meminfo)
	if [ "$need" -gt "$avail" ]; then
		printf '%-14s batch %d PyTorch: not run: its float32 weights alone are %.1f GiB, %.1f GiB available\n' \
			"$name" "$batch" "$(echo "$need" | awk '{print $1/2^30}')" "$(echo "$avail" | awk '{print $1/2^30}')"
		continue
	fi
	fresh_memory
	theirs=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 \
		/usr/bin/python3 scripts/torch-train-time.py "$SHARED/bench" "$dir" "$STEPS" "$batch" 256) || {
		echo "$name batch $batch PyTorch: FAILED"; continue
	}
	printf '%-14s batch %d PyTorch  f32  %s\n' "$name" "$batch" "$theirs"
	ttps=$(echo "$theirs" | awk '{print $1}')
	tcpu=$(echo "$theirs" | awk '{print $3}')
	for compute in $COMPUTE; do
		eval "ours=\${ours_$compute:-}"
		[ -n "$ours" ] || continue
		echo "$ours $ttps $tcpu" | awk -v name="$name" -v batch="$batch" -v compute="$compute" \
			'{printf "%-14s batch %d deltactl %-4s vs PyTorch: %.2fx tokens/s, %.2fx fewer CPU s/step\n", name, batch, compute, $1 / $3, $4 / $2}'
	done
done
