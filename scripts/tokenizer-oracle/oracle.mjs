// oracle.mjs: the reference side of deltactl's format/tokenizer parity tests.
//
// It runs the JS port of Hugging Face tokenizers (@huggingface/tokenizers,
// installed by scripts/install-tokenizer-oracle.sh) over a whole corpus in one
// process. Usage:
//
//   node oracle.mjs ORACLE_DIR < request.json > response.json
//
// ORACLE_DIR holds node_modules (default .cache/tokenizer-oracle). The request
// is {"tokenizer": PATH, "config": PATH|null, "texts": [...]} for parity, or
// {"tokenizer": PATH, "config": PATH|null, "bench_file": PATH, "rounds": N} to
// time encode over a file's lines (wall and CPU seconds, best of N rounds). The parity response holds, per text, the ids
// with and without special tokens, the tokens, decode(ids) with and without
// skip_special_tokens, and decode of the ids without special tokens (null
// where decode throws).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";

const dir = resolve(process.argv[2] ?? ".cache/tokenizer-oracle");
const require = createRequire(join(dir, "package.json"));
const { Tokenizer } = require("@huggingface/tokenizers");

const req = JSON.parse(readFileSync(0, "utf8"));
const json = JSON.parse(readFileSync(req.tokenizer, "utf8"));
const config = req.config ? JSON.parse(readFileSync(req.config, "utf8")) : {};
const tok = new Tokenizer(json, config);

const tryDecode = (ids, skip) => {
  try {
    return tok.decode(ids, { skip_special_tokens: skip });
  } catch {
    return null;
  }
};

let out;
if (req.bench_file) {
  const text = readFileSync(req.bench_file, "utf8");
  const lines = text.split("\n");
  let best = Infinity;
  let bestCPU = Infinity;
  let count = 0;
  for (let r = 0; r < (req.rounds ?? 1); r++) {
    const t0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    count = 0;
    for (const line of lines) count += tok.encode(line, { add_special_tokens: false }).ids.length;
    const c = process.cpuUsage(c0);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
    bestCPU = Math.min(bestCPU, (c.user + c.system) / 1e6);
  }
  out = { bytes: Buffer.byteLength(text, "utf8"), seconds: best, cpu_seconds: bestCPU, tokens: count };
} else {
  out = req.texts.map((text) => {
    const withSpecial = tok.encode(text);
    const plain = tok.encode(text, { add_special_tokens: false });
    return {
      ids: withSpecial.ids,
      ids_plain: plain.ids,
      tokens: withSpecial.tokens,
      decoded: tryDecode(withSpecial.ids, false),
      decoded_skip: tryDecode(withSpecial.ids, true),
      decoded_plain: tryDecode(plain.ids, false),
    };
  });
}
process.stdout.write(JSON.stringify(out));
