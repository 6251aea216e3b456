import { buildCorpusSource, byteTokenizer, corpusEntry, type CorpusManifest, type CorpusSourceOptions, parseJsonl } from "@midtrain/data";
import { buildExperimentData, type ExperimentConfig, type ExperimentData } from "@midtrain/experiments";
import { HEAD_DIR, HEAD_DOCUMENTS } from "./corpora.js";

/** Fetches a file's text; gzip is undone with DecompressionStream unless the server already did. */
async function fetchText(url: string): Promise<string> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`cannot fetch ${url}: HTTP ${res.status}`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  // A server may already have undone the gzip (Content-Encoding); check the magic bytes.
  const gz = bytes[0] === 0x1f && bytes[1] === 0x8b;
  return gz ? await new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"))).text() : new TextDecoder().decode(bytes);
}

/**
 * The browser's `loadExperimentData` (packages/experiments/src/node.ts): the shipped corpora,
 * fetched from `base` (the served corpora folder, see vite.config.ts) and packed by
 * @midtrain/data's `buildCorpusSource`, the function the Node loader packs `{ corpus }` sources
 * with, so both produce the same sequences; which sources, their lengths and masking come from
 * `buildExperimentData`, as in Node. A source capped at HEAD_DOCUMENTS documents or fewer (every source of the
 * shrunken study) fetches the head of its train file (`corpora/head/`), not the whole file.
 * Validation files are fetched whole: the runner picks evenly spaced sequences from all of them.
 */
export async function loadBrowserData(config: ExperimentConfig, base: string, onStatus?: (s: string) => void): Promise<ExperimentData> {
  if (config.tokenizer !== "byte") throw new Error("the browser example supports `tokenizer: byte` only");
  const tokenizer = byteTokenizer();
  const manifest = JSON.parse(await fetchText(`${base}MANIFEST.json`)) as CorpusManifest;
  return buildExperimentData(config, tokenizer, async ({ name, source: s, kind, seqLen, maskPrompt, limit }) => {
    if (!s.corpus) throw new Error(`source '${name}': the browser example reads shipped corpora only ({ corpus: name }), not files`);
    const info = corpusEntry(manifest, s.corpus);
    onStatus?.(`loading corpus ${s.corpus}…`);
    const options = { name, tokenizer, seqLen, ...(limit ? { limit } : {}), ...(kind === "sft" ? { maskPrompt } : {}) };
    const trainFile = info.files.train.file;
    const head = limit !== undefined && limit <= HEAD_DOCUMENTS;
    const [train, valid] = await Promise.all([
      fetchText(`${base}${head ? HEAD_DIR : ""}${trainFile}`).then((text) => parseJsonl(text, trainFile)),
      fetchText(`${base}${info.files.valid.file}`).then((text) => parseJsonl(text, info.files.valid.file)),
    ]);
    const wanted = Math.min(limit ?? Number.POSITIVE_INFINITY, info.files.train.documents);
    if (train.length < wanted) {
      throw new Error(
        `${base}${head ? HEAD_DIR : ""}${trainFile} has ${train.length} documents, ${wanted} wanted: rebuild the page (vite build) against this @midtrain/data`,
      );
    }
    return buildCorpusSource(info, { train, valid }, options as CorpusSourceOptions);
  });
}
