/**
 * `midtrain tokenizer train`: fits a byte-level BPE on weighted sources and writes a standard
 * Hugging Face tokenizer.json (plus tokenizer_config.json naming EOS and PAD beside it).
 *
 *   midtrain tokenizer train --vocab-size 8192 --source prose=corpus:general:3 \
 *     --source code=data/code/ --out tok/tokenizer.json
 */
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { DataConfigError, loadHfTokenizer, recordSft, recordText, type SourcedRecord, trainBpeTokenizer } from "@midtrain/data";
import { listCorpora, loadCorpus, readRecords } from "@midtrain/data/node";
import { type Command, InvalidArgumentError } from "commander";

/** One `--source name=path[:weight]`; `path` may be `corpus:<name>` for a shipped corpus. */
export interface TokenizerSourceArg {
  name: string;
  path: string;
  weight: number;
}

/** Parses `name=path[:weight]` (the weight is the part after the last ':' when it is a number). */
export function parseTokenizerSource(v: string): TokenizerSourceArg {
  const eq = v.indexOf("=");
  if (eq <= 0 || eq === v.length - 1) throw new InvalidArgumentError(`expected name=path[:weight], got '${v}'`);
  const name = v.slice(0, eq);
  let path = v.slice(eq + 1);
  let weight = 1;
  const colon = path.lastIndexOf(":");
  if (colon > 0 && /^\s*(\d+\.?\d*|\.\d+)(e[-+]?\d+)?\s*$/i.test(path.slice(colon + 1))) {
    weight = Number(path.slice(colon + 1));
    path = path.slice(0, colon);
  }
  if (!(weight > 0) || !Number.isFinite(weight)) throw new InvalidArgumentError(`the weight of source '${name}' must be > 0, got ${weight}`);
  return { name, path, weight };
}

function wholeNumber(what: string, min: number) {
  return (v: string) => {
    const n = Number(v);
    if (!/^\s*\d+\s*$/.test(v) || !Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${what} must be a whole number >= ${min}, got '${v}'`);
    return n;
  };
}

/** The text of a record: a string, its text field, or an SFT example's prompt and response. */
function textOf(record: unknown, textField: string | undefined, origin: { file?: string; line?: number }): string {
  if (typeof record === "string") return record;
  const r = record as Record<string, unknown>;
  if (textField || (r && typeof r === "object" && typeof r.text === "string")) return recordText(record, { textField }, origin);
  const ex = recordSft(record, {}, origin);
  return `${ex.prompt}\n${ex.response}`;
}

async function* sourceTexts(src: TokenizerSourceArg, textField: string | undefined, maxBytes: number): AsyncGenerator<string> {
  let records: AsyncIterable<SourcedRecord>;
  if (src.path.startsWith("corpus:")) {
    const corpus = src.path.slice("corpus:".length);
    if (!listCorpora().includes(corpus)) throw new DataConfigError(`source '${src.name}': no shipped corpus '${corpus}'; shipped: ${listCorpora().join(", ")}`);
    records = loadCorpus(corpus, "train");
  } else records = readRecords(src.path);
  let bytes = 0;
  for await (const { record, origin } of records) {
    const t = textOf(record, textField, origin ?? {});
    yield t;
    bytes += Buffer.byteLength(t);
    if (maxBytes && bytes >= maxBytes) break;
  }
}

interface TrainFlags {
  vocabSize: number;
  source: TokenizerSourceArg[];
  out: string;
  special: string;
  minFrequency: number;
  maxMb?: number;
  textField?: string;
  force?: boolean;
}

/** Writes `text` to `path` through a temporary file and a rename (never half-written). */
function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, text);
    renameSync(tmp, path);
  } finally {
    rmSync(tmp, { force: true });
  }
}

export async function trainTokenizerCommand(o: TrainFlags, log: (line: string) => void = (l) => console.error(l)): Promise<void> {
  const out = resolve(o.out);
  const config = join(dirname(out), "tokenizer_config.json");
  for (const f of [out, config]) {
    if (existsSync(f) && !o.force) throw new DataConfigError(`${f} exists; pass --force to replace it, or choose another --out`);
  }
  const specials = o.special
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (specials.length < 1) throw new DataConfigError("--special needs at least one token (the first is EOS, the second PAD)");
  const maxBytes = (o.maxMb ?? 0) * 1e6;
  const t0 = Date.now();
  const secs = () => ((Date.now() - t0) / 1000).toFixed(1);
  const result = await trainBpeTokenizer(
    o.source.map((s) => ({ name: s.name, weight: s.weight, texts: sourceTexts(s, o.textField, maxBytes) })),
    {
      vocabSize: o.vocabSize,
      specialTokens: specials,
      minFrequency: o.minFrequency,
      onProgress: (p) => {
        if (p.phase === "count") log(`[${secs()}s] read ${p.source}: ${(p.bytes / 1e6).toFixed(1)} MB`);
        else if (p.merges % 2048 === 0 || p.merges === p.targetMerges) log(`[${secs()}s] merges ${p.merges}/${p.targetMerges}`);
      },
    },
  );
  const text = `${JSON.stringify(result.tokenizerJson)}\n`;
  // The written file must load; check before anything lands on disk.
  const tok = loadHfTokenizer(text, { engine: "bpe" });
  mkdirSync(dirname(out), { recursive: true });
  writeAtomic(
    config,
    `${JSON.stringify({ tokenizer_class: "PreTrainedTokenizerFast", eos_token: specials[0], ...(specials[1] ? { pad_token: specials[1] } : {}), add_prefix_space: false, clean_up_tokenization_spaces: false }, null, 2)}\n`,
  );
  writeAtomic(out, text);
  for (const s of result.sources) {
    log(`  ${s.name}: weight ${s.weight}, ${(s.bytes / 1e6).toFixed(1)} MB, ${s.documents} documents, ${s.uniqueWords} unique pre-tokens`);
  }
  if (result.vocabSize < o.vocabSize) log(`  only ${result.vocabSize} tokens: no pair is left that occurs at least ${o.minFrequency} times (--min-frequency)`);
  console.log(`${out}: ${tok.vocabSize} tokens (${result.merges} merges, EOS ${specials[0]} = ${tok.eosId}) in ${secs()} s; tokenizer_config.json beside it`);
}

/** Adds `midtrain tokenizer train`. */
export function registerTokenizerCommand(program: Command): void {
  const tokenizer = program.command("tokenizer").description("tokenizer tools");
  tokenizer
    .command("train")
    .description("fit a byte-level BPE (GPT-2 style) on weighted sources and write a Hugging Face tokenizer.json")
    .requiredOption("--vocab-size <n>", "tokens in the vocabulary: special tokens + 256 bytes + merges", wholeNumber("--vocab-size", 1))
    .requiredOption(
      "-s, --source <name=path[:weight]>",
      "a source: file, folder (text, JSONL, JSONL.gz, Parquet) or corpus:<shipped name>, with its share of the training signal (default 1); repeat for more",
      (v: string, prev: TokenizerSourceArg[] = []) => [...prev, parseTokenizerSource(v)],
    )
    .requiredOption("-o, --out <file>", "the tokenizer.json to write (tokenizer_config.json goes beside it)")
    .option("--special <tokens>", "special tokens, comma-separated: the first is EOS, the second PAD", "<|endoftext|>,<|padding|>")
    .option("--min-frequency <n>", "merge only pairs seen at least this often (weighted)", wholeNumber("--min-frequency", 1), 2)
    .option("--max-mb <n>", "read at most this many MB of text per source (default: all)", wholeNumber("--max-mb", 1))
    .option("--text-field <field>", "the JSON field holding the text (default: text, or an SFT record's prompt and response)")
    .option("--force", "replace an existing output")
    .action(async (o: TrainFlags) => {
      const names = new Set<string>();
      for (const s of o.source) {
        if (names.has(s.name)) throw new DataConfigError(`source '${s.name}' is given twice`);
        names.add(s.name);
      }
      await trainTokenizerCommand(o);
    });
}
