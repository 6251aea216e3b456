/**
 * Node-only: encodes many documents on worker threads with the fast byte-level BPE, keeping their
 * order. Each worker evaluates the same self-contained runtime the main thread uses
 * (`bpeRuntime.toString()`), so it works from the built package and from TypeScript sources
 * alike, with no worker file to locate.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { DataConfigError, DataError } from "../errors.js";
import { BpeTokenizer, ByteTokenizer, type Tokenizer } from "../tokenizer.js";
import { bpeRuntime } from "./runtime.js";

export interface EncodePoolOptions {
  /** Worker threads (default: the machine's cores, `os.availableParallelism()`). */
  threads?: number;
  /** Text (UTF-16 units) per task handed to a worker (default 262 144); smaller evens out the load, larger costs fewer messages. */
  chunkChars?: number;
}

/** Encodes batches of documents on worker threads; see {@link createEncodePool}. */
export interface EncodePool {
  /** Worker threads (0: this tokenizer is encoded in the calling thread). */
  readonly threads: number;
  /**
   * The ids of each text, in the order given (`result[i]` belongs to `texts[i]`; arrays of one
   * task share a buffer). Calls may overlap: keep a few batches in flight to keep every worker busy.
   */
  encode(texts: readonly string[]): Promise<Uint32Array[]>;
  /** Stops the workers; pending calls are rejected. */
  close(): Promise<void>;
}

const workerSource = (): string => `
const { parentPort, workerData } = require("node:worker_threads");
const runtime = (${bpeRuntime.toString()})();
const fail = (kind, field, message) => { throw new Error("tokenizer.json " + field + ": " + message); };
const core = runtime.compile(workerData.definition, workerData.compile, fail);
parentPort.on("message", (m) => {
  try {
    const parts = [];
    let total = 0;
    for (const t of m.texts) { const ids = core.encode(t); parts.push(ids); total += ids.length; }
    const ids = new Uint32Array(total);
    const lengths = new Uint32Array(parts.length);
    let o = 0;
    for (let i = 0; i < parts.length; i++) { ids.set(parts[i], o); o += parts[i].length; lengths[i] = parts[i].length; }
    parentPort.postMessage({ id: m.id, ids, lengths }, [ids.buffer, lengths.buffer]);
  } catch (e) {
    parentPort.postMessage({ id: m.id, error: String((e && e.message) || e) });
  }
});
`;

interface Task {
  id: number;
  texts: string[];
  resolve(r: { ids: Uint32Array; lengths: Uint32Array }): void;
  reject(e: Error): void;
}

function inThread(tokenizer: Tokenizer, text: string): Uint32Array {
  if (tokenizer instanceof ByteTokenizer) return Uint32Array.from(tokenizer.encodeBytes(text));
  return tokenizer.encodeIds ? tokenizer.encodeIds(text) : Uint32Array.from(tokenizer.encode(text));
}

/**
 * A pool of worker threads encoding with `tokenizer`. A {@link BpeTokenizer} (what
 * `loadHfTokenizer` returns for byte-level BPE files) is rebuilt in each worker; any other
 * tokenizer (bytes, @lenml) encodes in the calling thread with the same interface, `threads` 0.
 */
export function createEncodePool(tokenizer: Tokenizer, options: EncodePoolOptions = {}): EncodePool {
  const threads = options.threads ?? availableParallelism();
  if (!Number.isInteger(threads) || threads < 1) throw new DataConfigError(`threads must be a whole number >= 1, got ${threads}`);
  const chunkChars = options.chunkChars ?? 262_144;
  if (!(chunkChars > 0)) throw new DataConfigError(`chunkChars must be > 0, got ${chunkChars}`);
  if (!(tokenizer instanceof BpeTokenizer)) {
    let closed = false;
    return {
      threads: 0,
      async encode(texts) {
        if (closed) throw new DataError("encode pool is closed");
        return texts.map((t) => inThread(tokenizer, t));
      },
      async close() {
        closed = true;
      },
    };
  }

  const source = workerSource();
  const workerData = { definition: tokenizer.definition, compile: { cacheEntries: tokenizer.options.cacheEntries } };
  const queue: Task[] = [];
  const busy = new Map<Worker, Task>();
  const idle: Worker[] = [];
  const workers: Worker[] = [];
  let failure: Error | undefined;
  let nextId = 0;
  let closed = false;

  const fault = (e: Error) => {
    failure ??= e;
    for (const t of queue.splice(0)) t.reject(failure);
    for (const [w, t] of busy) {
      busy.delete(w);
      t.reject(failure);
    }
  };
  const pump = () => {
    while (idle.length && queue.length) {
      const w = idle.pop() as Worker;
      const t = queue.shift() as Task;
      busy.set(w, t);
      w.ref();
      w.postMessage({ id: t.id, texts: t.texts });
    }
  };
  for (let i = 0; i < threads; i++) {
    const w = new Worker(source, { eval: true, workerData });
    w.unref();
    w.on("message", (m: { id: number; ids?: Uint32Array; lengths?: Uint32Array; error?: string }) => {
      const t = busy.get(w);
      busy.delete(w);
      idle.push(w);
      w.unref();
      if (t) {
        if (m.error !== undefined) t.reject(new DataError(`tokenizer worker: ${m.error}`));
        else t.resolve({ ids: m.ids as Uint32Array, lengths: m.lengths as Uint32Array });
      }
      pump();
    });
    w.on("error", (e) => fault(new DataError(`tokenizer worker failed: ${e.message}`)));
    w.on("exit", (code) => {
      if (code !== 0 && !closed) fault(new DataError(`tokenizer worker exited with code ${code}`));
    });
    workers.push(w);
    idle.push(w);
  }

  const run = (texts: string[]) =>
    new Promise<{ ids: Uint32Array; lengths: Uint32Array }>((resolve, reject) => {
      if (failure) return reject(failure);
      queue.push({ id: nextId++, texts, resolve, reject });
      pump();
    });

  return {
    threads,
    async encode(texts) {
      if (closed) throw new DataError("encode pool is closed");
      // Contiguous chunks of about chunkChars each, at least one text per chunk.
      const chunks: string[][] = [];
      let cur: string[] = [];
      let chars = 0;
      for (const t of texts) {
        if (typeof t !== "string") throw new DataConfigError(`encode expects strings, got ${typeof t}`);
        cur.push(t);
        chars += t.length;
        if (chars >= chunkChars) {
          chunks.push(cur);
          cur = [];
          chars = 0;
        }
      }
      if (cur.length) chunks.push(cur);
      const results = await Promise.all(chunks.map(run));
      const out: Uint32Array[] = [];
      for (const { ids, lengths } of results) {
        let o = 0;
        for (const n of lengths) {
          out.push(ids.subarray(o, o + n));
          o += n;
        }
      }
      return out;
    },
    async close() {
      if (closed) return;
      closed = true;
      fault(new DataError("encode pool is closed"));
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}

/** Encodes `texts` on worker threads and returns their ids in order (a pool for one batch). */
export async function encodeParallel(tokenizer: Tokenizer, texts: readonly string[], options: EncodePoolOptions = {}): Promise<Uint32Array[]> {
  const pool = createEncodePool(tokenizer, options);
  try {
    return await pool.encode(texts);
  } finally {
    await pool.close();
  }
}
