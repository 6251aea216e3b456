/**
 * One data path for every config source: a shipped corpus or raw files are prepared into a
 * token store in a cache keyed by the inputs' and tokenizer's fingerprints (on first use, with
 * a progress bar), a `store:` source names a prepared store; training reads every source from
 * its store by random access.
 */
import { createHash } from "node:crypto";
import { statSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { type BuiltSource, type Tokenizer, tokenizerFingerprint } from "@midtrain/data";
import {
  corpusManifest,
  corpusPath,
  openTokenStore,
  type PrepareOptions,
  type PrepareProgress,
  type PrepareResult,
  prepare,
  resolveInputs,
  StoreLockedError,
  type TokenizerSpec,
  type TokenStore,
} from "@midtrain/data/node";
import cliProgress from "cli-progress";
import type { ExperimentConfig } from "./config.js";
import type { SourceRequest } from "./data.js";

/** Where `midtrain run` and `midtrain prepare <config>` keep prepared stores: $MIDTRAIN_CACHE_DIR, else $XDG_CACHE_HOME/midtrain/stores, else ~/.cache/midtrain/stores. */
export function storeCacheDir(): string {
  if (process.env.MIDTRAIN_CACHE_DIR) return resolve(process.env.MIDTRAIN_CACHE_DIR);
  return join(process.env.XDG_CACHE_HOME ? resolve(process.env.XDG_CACHE_HOME) : join(homedir(), ".cache"), "midtrain", "stores");
}

/** The tokenizer spec of a config (what prepare's worker threads load). */
export function configTokenizerSpec(config: Pick<ExperimentConfig, "tokenizer">): TokenizerSpec {
  return config.tokenizer === "byte" ? "bytes" : { tokenizerJson: config.tokenizer.path };
}

type ConfigSource = ExperimentConfig["data"]["sources"][string] & { store?: string };

/** What prepare makes of one config source (no `store`): inputs, kind, split and record options. */
export function sourcePrepareOptions(
  config: Pick<ExperimentConfig, "data">,
  s: ConfigSource,
  kind: "pretrain" | "sft",
): Omit<PrepareOptions, "out" | "tokenizer"> & { kind: "pretrain" | "sft" } {
  if (s.corpus) {
    const k = corpusManifest().corpora[s.corpus]?.kind ?? kind;
    return { input: corpusPath(s.corpus, "train"), validInput: corpusPath(s.corpus, "valid"), kind: k };
  }
  return {
    input: s.path!,
    ...(s.validPath ? { validInput: s.validPath } : { validFraction: config.data.validationFraction }),
    kind,
    ...(s.textField ? { textField: s.textField } : {}),
  };
}

/**
 * The cache folder of a source: its name and a key over the tokenizer's fingerprint, the kind,
 * split and record options, and every input file's path, size and modification time (a changed
 * file gives another key, so a stale store is never read).
 */
export function cacheFolder(name: string, opts: ReturnType<typeof sourcePrepareOptions>, fingerprint: string): string {
  const files = (x: string | string[] | undefined) =>
    x === undefined ? [] : resolveInputs(x, opts.extensions).map((p) => [p, statSync(p).size, statSync(p).mtimeMs]);
  const { input, validInput, ...rest } = opts;
  const key = createHash("sha256")
    .update(JSON.stringify([fingerprint, rest, files(input), files(validInput)]))
    .digest("hex")
    .slice(0, 16);
  return join(storeCacheDir(), `${name}-${opts.kind}-${key}`);
}

/** A progress view for prepare: a cli-progress bar on a TTY, else a plain line every 10 s (and at the end). */
export function prepareProgressView(label: string, stream: NodeJS.WriteStream = process.stderr) {
  const tty = Boolean(stream.isTTY) && !process.env.CI;
  const mb = (b: number) => (b / 1e6).toFixed(1);
  const fmt = (p: PrepareProgress) => {
    const rate = p.seconds > 0 ? p.textBytes / 1e6 / p.seconds : 0;
    const left = p.totalInputBytes - p.inputBytes;
    const inRate = p.seconds > 0 ? p.inputBytes / p.seconds : 0;
    const eta = inRate > 0 ? left / inRate : Number.NaN;
    const etaText = Number.isFinite(eta)
      ? eta >= 60
        ? `${Math.floor(eta / 60)}m${String(Math.round(eta % 60)).padStart(2, "0")}s`
        : `${Math.round(eta)}s`
      : "--";
    return { rate: rate.toFixed(1), tokens: p.tokens.toLocaleString("en-US"), eta: etaText, shards: p.shards };
  };
  let bar: cliProgress.SingleBar | undefined;
  let last = 0;
  return {
    update(p: PrepareProgress) {
      const f = fmt(p);
      if (tty) {
        if (!bar) {
          bar = new cliProgress.SingleBar(
            { format: `${label} |{bar}| {percentage}% {rate} MB/s {tokens} tokens {shards} shards ETA {eta2}`, hideCursor: true, barsize: 24, stream },
            cliProgress.Presets.shades_classic,
          );
          bar.start(Math.max(1, p.totalInputBytes), 0, { rate: f.rate, tokens: f.tokens, eta2: f.eta, shards: f.shards });
        }
        bar.update(p.inputBytes, { rate: f.rate, tokens: f.tokens, eta2: f.eta, shards: f.shards });
        return;
      }
      const now = Date.now();
      if (now - last < 10_000 && p.inputBytes < p.totalInputBytes) return;
      last = now;
      stream.write(`${label}: ${mb(p.inputBytes)}/${mb(p.totalInputBytes)} MB read, ${f.rate} MB/s, ${f.tokens} tokens, ${f.shards} shards, ETA ${f.eta}\n`);
    },
    stop() {
      bar?.stop();
      bar = undefined;
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Prepares into `out`, waiting while another process prepares the same folder (then its store is used). */
export async function prepareWaiting(options: PrepareOptions, onWait?: (pid: number) => void): Promise<PrepareResult> {
  let told = false;
  for (;;) {
    try {
      return await prepare(options);
    } catch (e) {
      if (!(e instanceof StoreLockedError)) throw e;
      if (!told) onWait?.(e.pid);
      told = true;
      await sleep(500);
    }
  }
}

export interface SourceStoreOptions {
  tokenizer: Tokenizer;
  /** Progress of a prepare (default: a bar / plain lines on stderr); `false` for none. */
  progress?: false | ((label: string) => { update(p: PrepareProgress): void; stop(): void });
  /** Worker threads of a prepare (default: the cores, at most 8). */
  workers?: number;
  rebuild?: boolean;
}

/** The store of one config source: the one it names, or its cache folder, prepared when missing or unfinished. */
export async function sourceStore(
  config: Pick<ExperimentConfig, "data" | "tokenizer">,
  name: string,
  s: ConfigSource,
  kind: "pretrain" | "sft",
  o: SourceStoreOptions,
): Promise<TokenStore> {
  if (s.store) return openTokenStore(s.store, { tokenizer: o.tokenizer });
  const opts = sourcePrepareOptions(config, s, kind);
  const out = cacheFolder(name, opts, tokenizerFingerprint(o.tokenizer));
  const view = o.progress === false ? undefined : (o.progress ?? ((l: string) => prepareProgressView(l)))(`prepare ${name}`);
  try {
    await prepareWaiting(
      {
        ...opts,
        out,
        tokenizer: o.tokenizer,
        workers: o.workers,
        rebuild: o.rebuild ?? true,
        onProgress: view ? (p) => view.update(p) : undefined,
      },
      (pid) => process.stderr.write(`[midtrain] waiting for process ${pid}, which prepares ${out}\n`),
    );
  } finally {
    view?.stop();
  }
  return openTokenStore(out, { tokenizer: o.tokenizer });
}

/** Train and validation sources of one request, read from its store (validation keeps its tail, as the packers do). */
export function storeSources(store: TokenStore, request: Pick<SourceRequest, "name" | "seqLen" | "limit" | "maskPrompt">): BuiltSource {
  const sft = store.manifest.kind === "sft";
  const common = { seqLen: request.seqLen, ...(sft ? { maskPrompt: request.maskPrompt ?? true } : {}) };
  return {
    train: store.source("train", { ...common, limit: request.limit, name: request.name }),
    valid: store.source("valid", { ...common, keepTail: !sft, allowEmpty: true, name: `${request.name} (validation)` }),
  };
}
