/**
 * Node-only file I/O: `@midtrain/model/node`. Hugging Face checkpoints (`model.safetensors`
 * + `config.json`) and raw safetensors files, written atomically (temp file + rename).
 */
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import { join } from "node:path";
import { CheckpointError, SafetensorsError } from "./errors.js";
import { encodeFloat32, fromHfConfig, SAFETENSORS_DTYPE, type SaveDtype, safeTensorsToHf, toHfConfig } from "./hf.js";
import { type GPTNeoXModel, type MemoryOptions, modelFromHfTensors } from "./model.js";
import { checkTensorData, decodeTensor, parseHeader, readHeaderLength, type SafeTensor, type SafetensorsSpec, safetensorsHeader } from "./safetensors.js";

/**
 * Creates `path` atomically: `write` fills a temporary file in the same folder, which is synced
 * and renamed over `path`; on any error the temporary file is removed and `path` is untouched.
 */
async function writeThroughTemp(path: string, write: (fh: fs.FileHandle) => Promise<void>): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    const fh = await fs.open(tmp, "w");
    try {
      await write(fh);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, path);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
}

/** Writes `data` to `path` through a temporary file in the same folder and a rename. */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  await writeThroughTemp(path, (fh) => fh.writeFile(data));
}

/** Runs `f`; a SafetensorsError it throws gets the file's path in front of its message. */
function inFile<T>(path: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof SafetensorsError) throw new SafetensorsError(`${path}: ${e.message}`);
    throw e;
  }
}

/**
 * Reads a safetensors file tensor by tensor: the header length is checked against the file
 * size before anything is allocated, and each tensor is read into its own buffer.
 */
export async function readSafetensorsFile(path: string): Promise<{ tensors: Map<string, SafeTensor>; metadata: Record<string, string> }> {
  const fh = await fs.open(path, "r");
  try {
    const { size } = await fh.stat();
    const first8 = new Uint8Array(8);
    if (size >= 8) await fh.read(first8, 0, 8, 0);
    const n = inFile(path, () => readHeaderLength(first8, size));
    const headerBytes = new Uint8Array(n);
    await fh.read(headerBytes, 0, n, 8);
    const dataStart = 8 + n;
    const header = inFile(path, () => parseHeader(headerBytes, size - dataStart, dataStart));
    const tensors = new Map<string, SafeTensor>();
    for (const [name, e] of header.entries) {
      const buf = new Uint8Array(e.end - e.begin);
      const { bytesRead } = await fh.read(buf, 0, buf.byteLength, dataStart + e.begin);
      if (bytesRead !== buf.byteLength) {
        throw new SafetensorsError(`${path}: tensor '${name}' is truncated (file changed while reading?)`);
      }
      tensors.set(name, decodeTensor(e, buf));
    }
    return { tensors, metadata: header.metadata };
  } finally {
    await fh.close();
  }
}

/**
 * Writes a safetensors file tensor by tensor (never the whole file in memory), to a
 * temporary name renamed at the end. `data(i)` produces the bytes of `specs[i]`.
 */
export async function writeSafetensorsStream(
  path: string,
  specs: SafetensorsSpec[],
  metadata: Record<string, string>,
  data: (index: number) => Promise<ArrayBufferView> | ArrayBufferView,
): Promise<void> {
  const { header, sizes } = safetensorsHeader(specs, metadata);
  await writeThroughTemp(path, async (fh) => {
    await fh.write(header);
    for (let i = 0; i < specs.length; i++) {
      const view = await data(i);
      if (view.byteLength !== sizes[i]) {
        throw new SafetensorsError(`tensor '${specs[i].name}' ${specs[i].dtype}[${specs[i].shape}] needs ${sizes[i]} bytes of data, got ${view.byteLength}`);
      }
      await fh.write(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
    }
  });
}

/** Writes tensors to a safetensors file atomically. */
export async function writeSafetensorsFile(
  path: string,
  tensors: Map<string, SafeTensor> | Record<string, SafeTensor>,
  metadata: Record<string, string> = {},
): Promise<void> {
  const list = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  for (const [name, t] of list) checkTensorData(name, t);
  await writeSafetensorsStream(
    path,
    list.map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape })),
    metadata,
    (i) => list[i][1].data,
  );
}

export interface SaveHfOptions {
  /** Dtype of the weights in the file (default float32). */
  dtype?: SaveDtype;
}

/**
 * Saves `model.safetensors` and `config.json` (GPTNeoXForCausalLM names and keys) into
 * `dir`, creating it. Each file is written to a temporary name and renamed.
 */
export async function saveHf(model: GPTNeoXModel, dir: string, options: SaveHfOptions = {}): Promise<void> {
  const dtype = options.dtype ?? "float32";
  await fs.mkdir(dir, { recursive: true });
  const specs = model.specs.map((s) => ({ name: s.name, dtype: SAFETENSORS_DTYPE[dtype], shape: s.hfShape }));
  // one parameter in memory at a time: pythia-1b is 4 GB in float32
  await writeSafetensorsStream(join(dir, "model.safetensors"), specs, { format: "pt" }, async (i) =>
    encodeFloat32((await model.hfTensor(specs[i].name)).data, dtype),
  );
  const config = `${JSON.stringify(toHfConfig(model.config, dtype), null, 2)}\n`;
  await writeFileAtomic(join(dir, "config.json"), config);
}

/**
 * Loads a GPTNeoXForCausalLM checkpoint folder (`config.json` + `model.safetensors`);
 * `memory` sets the model's memory options (recomputation, loss chunking).
 */
export async function loadHf(dir: string, memory: MemoryOptions = {}): Promise<GPTNeoXModel> {
  const configPath = join(dir, "config.json");
  let text: string;
  try {
    text = await fs.readFile(configPath, "utf8");
  } catch (e) {
    throw new CheckpointError(`cannot read ${configPath}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(`${configPath} is not valid JSON (${(e as Error).message})`);
  }
  const config = fromHfConfig(json);
  const weightsPath = join(dir, "model.safetensors");
  try {
    await fs.access(weightsPath);
  } catch {
    throw new CheckpointError(
      `${weightsPath} not found; only single-file safetensors checkpoints are supported (convert pytorch_model.bin or sharded files first)`,
    );
  }
  const { tensors } = await readSafetensorsFile(weightsPath);
  return modelFromHfTensors(config, safeTensorsToHf(tensors), memory);
}
