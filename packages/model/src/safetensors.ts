/**
 * The safetensors format, pure and browser-safe: an 8-byte little-endian header length N,
 * N bytes of UTF-8 JSON `{ name: { dtype, shape, data_offsets: [begin, end] }, __metadata__ }`
 * (offsets relative to the data section), then the little-endian tensor bytes.
 */
import { SafetensorsError } from "./errors.js";

export type SafetensorsDtype = "F64" | "F32" | "F16" | "BF16" | "I64" | "I32" | "I16" | "I8" | "U8" | "BOOL";

/** Typed array holding a tensor's values: F16/BF16 as raw Uint16 bit patterns, I64 as BigInt64. */
export type SafetensorsData = Float64Array | Float32Array | Uint16Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array;

export interface SafeTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: SafetensorsData;
}

/** Header entry of one tensor; `begin`/`end` are byte offsets into the data section. */
export interface SafetensorsEntry {
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  entries: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
  /** Byte offset of the data section in the file (8 + header length). */
  dataStart: number;
}

const DTYPE_BYTES: Record<SafetensorsDtype, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** Largest header accepted (the reference implementation's limit). */
export const MAX_HEADER_BYTES = 100_000_000;

function isDtype(x: unknown): x is SafetensorsDtype {
  return typeof x === "string" && Object.hasOwn(DTYPE_BYTES, x);
}

function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Reads and checks the header length from the first 8 bytes of a file of `fileSize` bytes.
 * Throws before anything is allocated when the length cannot fit in the file.
 */
export function readHeaderLength(first8: Uint8Array, fileSize: number): number {
  if (fileSize < 8 || first8.byteLength < 8) {
    throw new SafetensorsError(`file is ${fileSize} bytes; a safetensors file starts with an 8-byte header length`);
  }
  const dv = new DataView(first8.buffer, first8.byteOffset, 8);
  const n = dv.getBigUint64(0, true);
  if (n > BigInt(fileSize - 8)) {
    throw new SafetensorsError(`header length ${n} exceeds the file size (${fileSize} bytes): the file is truncated or not safetensors`);
  }
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError(`header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  if (n < 2n) throw new SafetensorsError(`header length ${n} is too small for a JSON object`);
  return Number(n);
}

/** Parses and validates the JSON header against a data section of `dataLength` bytes. */
export function parseHeader(headerBytes: Uint8Array, dataLength: number, dataStart: number = 8 + headerBytes.byteLength): SafetensorsHeader {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(headerBytes);
  } catch {
    throw new SafetensorsError("header is not valid UTF-8");
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(`header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new SafetensorsError("header must be a JSON object of tensor entries");
  }
  const entries = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
        throw new SafetensorsError("__metadata__ must be an object of strings");
      }
      for (const [k, v] of Object.entries(raw)) {
        if (typeof v !== "string") throw new SafetensorsError(`__metadata__.${k} must be a string`);
      }
      metadata = raw as Record<string, string>;
      continue;
    }
    if (typeof raw !== "object" || raw === null) {
      throw new SafetensorsError(`entry '${name}' must be an object with dtype, shape, data_offsets`);
    }
    const { dtype, shape, data_offsets: off } = raw as Record<string, unknown>;
    if (!isDtype(dtype)) {
      throw new SafetensorsError(`tensor '${name}' has unsupported dtype ${JSON.stringify(dtype)}; supported: ${Object.keys(DTYPE_BYTES).join(", ")}`);
    }
    if (!Array.isArray(shape) || !shape.every((s) => Number.isSafeInteger(s) && s >= 0)) {
      throw new SafetensorsError(`tensor '${name}' has an invalid shape ${JSON.stringify(shape)}`);
    }
    if (!Array.isArray(off) || off.length !== 2 || !off.every((o) => Number.isSafeInteger(o) && o >= 0) || off[0] > off[1]) {
      throw new SafetensorsError(`tensor '${name}' has invalid data_offsets ${JSON.stringify(off)}`);
    }
    const [begin, end] = off as [number, number];
    if (end > dataLength) {
      throw new SafetensorsError(`tensor '${name}' data [${begin}, ${end}) lies beyond the data section (${dataLength} bytes): the file is truncated`);
    }
    const expected = numel(shape) * DTYPE_BYTES[dtype];
    if (end - begin !== expected) {
      throw new SafetensorsError(`tensor '${name}' ${dtype}[${shape}] needs ${expected} bytes but data_offsets span ${end - begin}`);
    }
    entries.set(name, { dtype, shape: shape.slice(), begin, end });
  }
  const sorted = [...entries.entries()].sort((a, b) => a[1].begin - b[1].begin);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i][1].begin < sorted[i - 1][1].end) {
      throw new SafetensorsError(`tensors '${sorted[i - 1][0]}' and '${sorted[i][0]}' have overlapping data_offsets`);
    }
  }
  return { entries, metadata, dataStart };
}

/** Copies a tensor's bytes into a fresh, aligned typed array of its dtype. */
export function decodeTensor(entry: SafetensorsEntry, bytes: Uint8Array): SafeTensor {
  const n = numel(entry.shape);
  const size = DTYPE_BYTES[entry.dtype];
  if (bytes.byteLength !== n * size) {
    throw new SafetensorsError(`expected ${n * size} bytes for ${entry.dtype}[${entry.shape}], got ${bytes.byteLength}`);
  }
  const copy = bytes.slice().buffer;
  let data: SafetensorsData;
  switch (entry.dtype) {
    case "F64":
      data = new Float64Array(copy);
      break;
    case "F32":
      data = new Float32Array(copy);
      break;
    case "F16":
    case "BF16":
      data = new Uint16Array(copy);
      break;
    case "I64":
      data = new BigInt64Array(copy);
      break;
    case "I32":
      data = new Int32Array(copy);
      break;
    case "I16":
      data = new Int16Array(copy);
      break;
    case "I8":
      data = new Int8Array(copy);
      break;
    default:
      data = new Uint8Array(copy);
  }
  return { dtype: entry.dtype, shape: entry.shape.slice(), data };
}

/** Parses a whole safetensors file held in memory. */
export function parseSafetensors(bytes: Uint8Array): {
  tensors: Map<string, SafeTensor>;
  metadata: Record<string, string>;
} {
  const n = readHeaderLength(bytes.subarray(0, 8), bytes.byteLength);
  const dataStart = 8 + n;
  const header = parseHeader(bytes.subarray(8, dataStart), bytes.byteLength - dataStart, dataStart);
  const tensors = new Map<string, SafeTensor>();
  for (const [name, e] of header.entries) {
    tensors.set(name, decodeTensor(e, bytes.subarray(dataStart + e.begin, dataStart + e.end)));
  }
  return { tensors, metadata: header.metadata };
}

function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/**
 * Values of a floating-point tensor as float32 (F16 and BF16 converted exactly, F64
 * rounded). Throws {@link SafetensorsError} for integer dtypes.
 */
export function toFloat32(t: SafeTensor, name = "tensor"): Float32Array {
  switch (t.dtype) {
    case "F32":
      return t.data as Float32Array;
    case "F64":
      return Float32Array.from(t.data as Float64Array);
    case "BF16": {
      const src = t.data as Uint16Array;
      const bits = new Uint32Array(src.length);
      for (let i = 0; i < src.length; i++) bits[i] = src[i] << 16;
      return new Float32Array(bits.buffer);
    }
    case "F16": {
      const src = t.data as Uint16Array;
      const out = new Float32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = f16ToF32(src[i]);
      return out;
    }
    default:
      throw new SafetensorsError(`${name} has dtype ${t.dtype}; expected a floating-point dtype (F32, F16, BF16 or F64)`);
  }
}

/** Converts float32 values to BF16 bit patterns (round to nearest even). */
export function f32ToBf16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i];
    if ((b & 0x7f800000) === 0x7f800000 && b & 0x7fffff) out[i] = (b >>> 16) | 0x40;
    else out[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
  return out;
}

/** Converts float32 values to IEEE half-precision bit patterns (round to nearest even). */
export function f32ToF16(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < values.length; i++) {
    f[0] = values[i];
    const x = u[0];
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    let mant = x & 0x7fffff;
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0);
      continue;
    }
    let e = exp - 127 + 15;
    if (e >= 31) {
      out[i] = sign | 0x7c00;
      continue;
    }
    if (e <= 0) {
      if (e < -10) {
        out[i] = sign;
        continue;
      }
      mant |= 0x800000;
      const shift = 14 - e;
      let half = mant >>> shift;
      const rem = mant & ((1 << shift) - 1);
      const mid = 1 << (shift - 1);
      if (rem > mid || (rem === mid && half & 1)) half++;
      out[i] = sign | half;
      continue;
    }
    let half = (e << 10) | (mant >>> 13);
    const rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
    e = half >>> 10;
    out[i] = sign | (e >= 31 ? 0x7c00 : half);
  }
  return out;
}

/** Name, dtype and shape of a tensor to be written. */
export interface SafetensorsSpec {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
}

/**
 * The first part of a safetensors file for tensors written in the given order: the 8-byte
 * header length and the JSON header, padded with spaces to a multiple of 8 bytes as the
 * reference writer does. Returns it with the byte size of each tensor's data.
 */
export function safetensorsHeader(specs: SafetensorsSpec[], metadata: Record<string, string> = {}): { header: Uint8Array; sizes: number[]; dataBytes: number } {
  const json: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") throw new SafetensorsError(`metadata '${k}' must be a string`);
    }
    json.__metadata__ = metadata;
  }
  let offset = 0;
  const sizes: number[] = [];
  const seen = new Set<string>();
  for (const { name, dtype, shape } of specs) {
    if (name === "__metadata__") throw new SafetensorsError("'__metadata__' is reserved, rename the tensor");
    if (seen.has(name)) throw new SafetensorsError(`tensor name '${name}' appears twice`);
    seen.add(name);
    if (!isDtype(dtype)) throw new SafetensorsError(`tensor '${name}' has unsupported dtype ${dtype}`);
    if (!shape.every((v) => Number.isSafeInteger(v) && v >= 0)) {
      throw new SafetensorsError(`tensor '${name}' has an invalid shape [${shape}]`);
    }
    const bytes = numel(shape) * DTYPE_BYTES[dtype];
    json[name] = { dtype, shape, data_offsets: [offset, offset + bytes] };
    sizes.push(bytes);
    offset += bytes;
  }
  const text = new TextEncoder().encode(JSON.stringify(json));
  const padded = Math.ceil(text.byteLength / 8) * 8;
  const header = new Uint8Array(8 + padded).fill(0x20, 8);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(text, 8);
  return { header, sizes, dataBytes: offset };
}

/** Checks that a tensor's data has the byte size its dtype and shape need. */
export function checkTensorData(name: string, t: SafeTensor): void {
  const bytes = numel(t.shape) * (DTYPE_BYTES[t.dtype] ?? Number.NaN);
  if (t.data.byteLength !== bytes) {
    throw new SafetensorsError(`tensor '${name}' ${t.dtype}[${t.shape}] needs ${bytes} bytes of data, got ${t.data.byteLength}`);
  }
}

/** Serializes tensors (in the given order) and string metadata to safetensors bytes. */
export function serializeSafetensors(tensors: Map<string, SafeTensor> | Record<string, SafeTensor>, metadata: Record<string, string> = {}): Uint8Array {
  const list = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const { header, dataBytes } = safetensorsHeader(
    list.map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape })),
    metadata,
  );
  for (const [name, t] of list) checkTensorData(name, t);
  const out = new Uint8Array(header.byteLength + dataBytes);
  out.set(header, 0);
  let pos = header.byteLength;
  for (const [, t] of list) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), pos);
    pos += t.data.byteLength;
  }
  return out;
}
