#!/usr/bin/env node
// Throughput of the data pipeline on the shipped corpora (not a test; prints JSON).
//   pnpm build && node scripts/bench.mjs [--corpora general,code] [--seq-len 128] [--repeat 3] [--tokenizer-json FILE]
// Measures, per corpus: reading (gunzip + JSON parse), tokenizing + packing with the byte-level
// tokenizer, and drawing mixer batches. MB are MB of UTF-8 text (1e6 bytes).
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = (entry) => join(here, `../dist/${entry}.js`);
if (!existsSync(dist("index")) || !existsSync(dist("node"))) {
  console.error("dist/index.js or dist/node.js not found: run `pnpm build` in packages/data first");
  process.exit(1);
}
// The core entry (tokenizers, packing, mixer) and the Node-only one (corpora, tokenizer files).
const lib = { ...(await import(pathToFileURL(dist("index")).href)), ...(await import(pathToFileURL(dist("node")).href)) };
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const names = arg("corpora", "general,code,math").split(",");
const seqLen = Number(arg("seq-len", "128"));
const repeat = Number(arg("repeat", "3"));
// --tokenizer-json path/to/tokenizer.json benchmarks a Hugging Face tokenizer instead of bytes.
const tjson = arg("tokenizer-json", undefined);
const tok = tjson ? lib.loadTokenizer({ tokenizerJson: tjson }) : new lib.ByteTokenizer();
const secs = (t) => Number(process.hrtime.bigint() - t) / 1e9;

const results = [];
for (const name of names) {
  // Read once into memory so that tokenize+pack is timed on its own.
  let t = process.hrtime.bigint();
  const texts = [];
  for await (const { record } of lib.loadCorpus(name, "train")) texts.push(record.text ?? `${record.prompt}\n${record.response}`);
  const readS = secs(t);
  const mb = texts.reduce((s, x) => s + Buffer.byteLength(x, "utf8"), 0) / 1e6;
  let best = Number.POSITIVE_INFINITY;
  let packed;
  for (let r = 0; r < repeat; r++) {
    t = process.hrtime.bigint();
    packed = lib.packPretrain(texts, tok, { seqLen });
    best = Math.min(best, secs(t));
  }
  const mixer = lib.createMixer({ sources: { [name]: packed }, schedule: { [name]: 1 }, seed: 0 });
  const time = { step: 0, tokens: 0, phase: "bench", phaseStep: 0, phaseSteps: 1, phaseFraction: 0 };
  const batches = 200;
  t = process.hrtime.bigint();
  for (let i = 0; i < batches; i++) mixer.nextBatch(32, time);
  const mixS = secs(t);
  results.push({
    corpus: name,
    textMB: Number(mb.toFixed(3)),
    documents: texts.length,
    readSeconds: Number(readS.toFixed(3)),
    readMBps: Number((mb / readS).toFixed(1)),
    tokenizePackSeconds: Number(best.toFixed(3)),
    tokenizePackMBps: Number((mb / best).toFixed(1)),
    tokens: packed.numTokens,
    sequences: packed.numSequences,
    mixerBatchesPerSecond: Math.round(batches / mixS),
    mixerTokensPerSecond: Math.round((batches * 32 * seqLen) / mixS),
  });
}
console.log(JSON.stringify({ node: process.version, tokenizer: tok.name, seqLen, batchSize: 32, results }, null, 2));
