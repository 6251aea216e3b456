/**
 * The shipped corpora without file access: their manifest's shape, JSON Lines parsing and the
 * rules that pack a corpus's two files into training and validation sources. The Node loader
 * (`loadCorpusSource` in node.ts) and a browser page that fetches the same files both call
 * {@link buildCorpusSource}, so they produce the same sequences.
 */
import { MalformedInputError, UnknownSourceError } from "./errors.js";
import { type BuiltSource, buildSource, type SourceOptions, type SourcedRecord } from "./source.js";

/** One shipped corpus as `corpora/MANIFEST.json` describes it. */
export interface CorpusInfo {
  name: string;
  kind: "pretrain" | "sft";
  description: string;
  provenance: string[];
  license: string;
  files: Record<"train" | "valid", { file: string; documents: number; bytes: number; textBytes: number; sha256: string }>;
}

/** `corpora/MANIFEST.json`: names, provenance, license, sizes and checksums of the shipped corpora. */
export interface CorpusManifest {
  version: 1;
  corpora: Record<string, CorpusInfo>;
}

/** The manifest entry of corpus `name`; an {@link UnknownSourceError} naming the shipped corpora when absent. */
export function corpusEntry(manifest: CorpusManifest, name: string): CorpusInfo {
  if (!Object.hasOwn(manifest.corpora, name)) throw new UnknownSourceError(name, Object.keys(manifest.corpora), "corpus lookup");
  return manifest.corpora[name];
}

/** Parses one line of a JSON Lines file; a {@link MalformedInputError} with file, line and a snippet when it is not JSON. */
export function parseJsonlLine(text: string, file: string | undefined, line: number): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const snippet = text.length > 60 ? `${text.slice(0, 60)}…` : text;
    throw new MalformedInputError(`invalid JSON (${(e as Error).message}) in ${JSON.stringify(snippet)}`, file, line);
  }
}

/** The records of a whole JSON Lines text (blank lines skipped), each with its file and line. */
export function parseJsonl(text: string, file?: string): SourcedRecord[] {
  const out: SourcedRecord[] = [];
  let line = 0;
  for (const l of text.split("\n")) {
    line++;
    if (l.trim() === "") continue;
    out.push({ record: parseJsonlLine(l, file, line), origin: { file, line } });
  }
  return out;
}

/** Packing options of a shipped corpus: everything but the kind (the manifest's) and a split (the corpus has its own). */
export type CorpusSourceOptions =
  | (Omit<Extract<SourceOptions, { kind?: "pretrain" }>, "validFraction" | "kind"> & { kind?: "pretrain" })
  | (Omit<Extract<SourceOptions, { kind: "sft" }>, "validFraction" | "kind"> & { kind?: "sft" });

type Records = Iterable<unknown> | AsyncIterable<unknown>;

/**
 * Packs a shipped corpus: its train file's records into `train` and its held-out file's into
 * `valid`. The kind (pretrain or SFT) is the manifest's; `limit` caps the train file only; a
 * pretraining validation source keeps its final partial block (padded and masked) so no
 * held-out text is dropped. Options set tokenizer, seqLen and masking.
 */
export async function buildCorpusSource(
  corpus: Pick<CorpusInfo, "name" | "kind">,
  records: { train: Records; valid: Records },
  options: CorpusSourceOptions,
): Promise<Required<BuiltSource>> {
  const opts = { name: corpus.name, ...options, kind: corpus.kind, validFraction: 0 } as SourceOptions;
  const train = (await buildSource(records.train, opts)).train;
  const { limit: _limit, ...validOpts } = opts;
  const valid = await buildSource(records.valid, {
    ...validOpts,
    ...(corpus.kind === "pretrain" ? { keepTail: true } : {}),
    name: `${corpus.name} (validation)`,
  } as SourceOptions);
  return { train, valid: valid.train };
}
