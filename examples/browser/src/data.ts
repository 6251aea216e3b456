import { type BuiltSource, type SourceOptions, buildSource, byteTokenizer } from "@midtrain/data";
import type { ExperimentConfig, ExperimentData } from "@midtrain/experiments";

interface Manifest {
  corpora: Record<string, { kind: "pretrain" | "sft"; files: Record<"train" | "valid", { file: string }> }>;
}

/** Reads a gzipped JSON Lines file served over HTTP into records (gzip undone with DecompressionStream). */
export async function fetchJsonlGz(url: string): Promise<unknown[]> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`cannot fetch ${url}: HTTP ${res.status}`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  // A server may already have undone the gzip (Content-Encoding); check the magic bytes.
  const gz = bytes[0] === 0x1f && bytes[1] === 0x8b;
  const text = gz
    ? await new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"))).text()
    : new TextDecoder().decode(bytes);
  const out: unknown[] = [];
  let line = 0;
  for (const l of text.split("\n")) {
    line++;
    if (l.trim() === "") continue;
    try {
      out.push(JSON.parse(l));
    } catch (e) {
      throw new Error(`${url}:${line}: invalid JSON (${(e as Error).message})`);
    }
  }
  return out;
}

/**
 * The browser's `loadExperimentData` (packages/experiments/src/node.ts): the shipped corpora,
 * fetched from `base` (the served packages/data/corpora folder), packed exactly as the Node
 * loader packs `{ corpus }` sources — train file → train, valid file → valid (pretraining keeps
 * the final partial block), `maxDocuments` limiting the train file.
 */
export async function loadBrowserData(config: ExperimentConfig, base: string, onStatus?: (s: string) => void): Promise<ExperimentData> {
  if (config.tokenizer !== "byte") throw new Error("the browser example supports `tokenizer: byte` only");
  const tokenizer = byteTokenizer();
  const manifestRes = await fetch(`${base}MANIFEST.json`);
  if (!manifestRes.ok) throw new Error(`cannot fetch ${base}MANIFEST.json: HTTP ${manifestRes.status}`);
  const manifest = (await manifestRes.json()) as Manifest;
  const build = async (
    name: string,
    s: ExperimentConfig["data"]["sources"][string],
    kind: "pretrain" | "sft",
    maskPrompt?: boolean,
  ): Promise<Required<BuiltSource>> => {
    if (!s.corpus) throw new Error(`source '${name}': the browser example reads shipped corpora only ({ corpus: name }), not files`);
    const info = manifest.corpora[s.corpus];
    if (!info) throw new Error(`source '${name}': unknown corpus '${s.corpus}' (shipped: ${Object.keys(manifest.corpora).join(", ")})`);
    onStatus?.(`loading corpus ${s.corpus}…`);
    const seqLen = kind === "sft" ? (config.sft?.seqLen ?? config.data.seqLen) : config.data.seqLen;
    const opts = {
      name,
      tokenizer,
      seqLen,
      ...(s.maxDocuments ? { limit: s.maxDocuments } : {}),
      ...(kind === "sft" ? { maskPrompt } : {}),
      kind: info.kind,
      validFraction: 0,
    } as SourceOptions;
    const [trainRecords, validRecords] = await Promise.all([
      fetchJsonlGz(`${base}${info.files.train.file}`),
      fetchJsonlGz(`${base}${info.files.valid.file}`),
    ]);
    const train = (await buildSource(trainRecords, opts)).train;
    const { limit: _limit, ...validOpts } = opts;
    const valid = (
      await buildSource(validRecords, {
        ...validOpts,
        ...(info.kind === "pretrain" ? { keepTail: true } : {}),
        name: `${s.corpus} (validation)`,
      } as SourceOptions)
    ).train;
    if (valid.numSequences === 0) throw new Error(`source '${name}' has no validation sequences; give it more documents`);
    return { train, valid };
  };
  const sources: ExperimentData["sources"] = {};
  for (const [name, s] of Object.entries(config.data.sources)) sources[name] = await build(name, s, "pretrain");
  const sft: ExperimentData["sft"] = {};
  for (const [name, s] of Object.entries(config.data.sft)) sft[name] = await build(name, s, "sft", (s as { maskPrompt?: boolean }).maskPrompt ?? true);
  return { tokenizer, sources, sft };
}
