/**
 * Worker thread of `prepare`: loads the tokenizer from its spec once, then encodes the document
 * batches it is sent (see encode.ts) and posts the results back with their buffers transferred.
 */
import { parentPort, workerData } from "node:worker_threads";
import { type DocBatch, encodeBatch } from "./encode.js";
import { loadTokenizer, type TokenizerSpec } from "./files.js";

const { spec, width, split } = workerData as { spec: TokenizerSpec; width: 2 | 4; split?: { fraction: number; seed: number } };
const tokenizer = loadTokenizer(spec);

parentPort!.on("message", (m: { id: number; batch: DocBatch }) => {
  try {
    const result = encodeBatch(tokenizer, m.batch, width, split);
    const transfer = [
      result.tokens.buffer,
      result.ends.buffer,
      result.bytes.buffer,
      result.valid.buffer,
      ...(result.promptLens ? [result.promptLens.buffer] : []),
    ];
    parentPort!.postMessage({ id: m.id, result }, transfer as ArrayBuffer[]);
  } catch (e) {
    parentPort!.postMessage({ id: m.id, error: (e as Error).message });
  }
});
