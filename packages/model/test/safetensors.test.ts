import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { f32ToBf16, f32ToF16, parseSafetensors, type SafeTensor, SafetensorsError, serializeSafetensors, toFloat32 } from "../src/index.js";
import { FIXTURE_DIR } from "./helpers.js";

/** Builds a file by hand: u64 LE header length, header JSON, data bytes. */
function rawFile(header: unknown, data: Uint8Array = new Uint8Array(0), lenOverride?: bigint): Uint8Array {
  const json = new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, lenOverride ?? BigInt(json.byteLength), true);
  out.set(json, 8);
  out.set(data, 8 + json.byteLength);
  return out;
}

describe("safetensors format", () => {
  it("writes the documented byte layout", () => {
    const bytes = serializeSafetensors({ a: { dtype: "F32", shape: [2], data: new Float32Array([1, -2]) } });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + n) % 8).toBe(0); // header padded with spaces to 8-byte alignment
    const header = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(header.trimEnd()).toBe('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}');
    expect(header.endsWith(" ") || header.length % 8 === 0).toBe(true);
    expect(Array.from(bytes.subarray(8 + n))).toEqual([0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0]);
  });

  it("round-trips every dtype, shapes (incl. scalar and empty) and metadata", () => {
    const tensors: Record<string, SafeTensor> = {
      f32: { dtype: "F32", shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6.5]) },
      f64: { dtype: "F64", shape: [2], data: new Float64Array([Math.PI, -1e300]) },
      bf16: { dtype: "BF16", shape: [3], data: new Uint16Array([0x3f80, 0xc020, 0]) },
      f16: { dtype: "F16", shape: [1, 1], data: new Uint16Array([0x3c00]) },
      i64: { dtype: "I64", shape: [2], data: new BigInt64Array([-5n, 1n << 40n]) },
      i32: { dtype: "I32", shape: [], data: new Int32Array([-7]) },
      u8: { dtype: "U8", shape: [0, 4], data: new Uint8Array(0) },
      i8: { dtype: "I8", shape: [1], data: new Int8Array([-1]) },
    };
    const bytes = serializeSafetensors(tensors, { format: "pt", note: "x" });
    const { tensors: back, metadata } = parseSafetensors(bytes);
    expect(metadata).toEqual({ format: "pt", note: "x" });
    expect([...back.keys()].sort()).toEqual(Object.keys(tensors).sort());
    for (const [name, t] of Object.entries(tensors)) {
      const b = back.get(name)!;
      expect(b.dtype, name).toBe(t.dtype);
      expect(b.shape, name).toEqual(t.shape);
      expect(Array.from(b.data as ArrayLike<number | bigint>), name).toEqual(Array.from(t.data as ArrayLike<number | bigint>));
    }
    expect(toFloat32(back.get("bf16")!)).toEqual(new Float32Array([1, -2.5, 0]));
    expect(toFloat32(back.get("f16")!)).toEqual(new Float32Array([1]));
  });

  it("reads a file written by the Python reference", () => {
    const { tensors, metadata } = parseSafetensors(new Uint8Array(readFileSync(join(FIXTURE_DIR, "model", "model.safetensors"))));
    expect(metadata).toEqual({ format: "pt" });
    expect(tensors.get("gpt_neox.embed_in.weight")!.shape).toEqual([384, 64]);
    expect(tensors.get("gpt_neox.layers.1.attention.query_key_value.weight")!.shape).toEqual([192, 64]);
  });

  it("decodes BF16 and F16 exactly as torch converts them, and encodes them the same way", () => {
    const { tensors } = parseSafetensors(new Uint8Array(readFileSync(join(FIXTURE_DIR, "halfs.safetensors"))));
    const x = tensors.get("x")!.data as Float32Array;
    expect(toFloat32(tensors.get("x_bf16")!)).toEqual(toFloat32(tensors.get("x_bf16_as_f32")!));
    expect(toFloat32(tensors.get("x_f16")!)).toEqual(toFloat32(tensors.get("x_f16_as_f32")!));
    expect(Array.from(f32ToBf16(x))).toEqual(Array.from(tensors.get("x_bf16")!.data as Uint16Array));
    expect(Array.from(f32ToF16(x))).toEqual(Array.from(tensors.get("x_f16")!.data as Uint16Array));
  });

  it("refuses integer tensors where floats are expected", () => {
    expect(() => toFloat32({ dtype: "I32", shape: [1], data: new Int32Array([1]) }, "w")).toThrow(/w has dtype I32; expected a floating-point dtype/);
  });
});

describe("malformed safetensors give clear errors", () => {
  const good = serializeSafetensors({
    a: { dtype: "F32", shape: [4], data: new Float32Array([1, 2, 3, 4]) },
    b: { dtype: "F32", shape: [2], data: new Float32Array([5, 6]) },
  });
  const parse = (b: Uint8Array) => () => parseSafetensors(b);

  it("file shorter than the length prefix", () => {
    expect(parse(new Uint8Array(5))).toThrow(SafetensorsError);
    expect(parse(new Uint8Array(5))).toThrow(/8-byte header length/);
  });

  it("header length beyond the file (no allocation of that size)", () => {
    expect(parse(rawFile("{}", new Uint8Array(0), 1n << 40n))).toThrow(/header length 1099511627776 exceeds the file size/);
    expect(parse(rawFile("{}", new Uint8Array(0), 0xffffffffffffffffn))).toThrow(/exceeds the file size/);
  });

  it("bad JSON, non-object header, bad UTF-8", () => {
    expect(parse(rawFile('{"a": '))).toThrow(/header is not valid JSON/);
    expect(parse(rawFile("[1,2]"))).toThrow(/header must be a JSON object/);
    const bad = rawFile('{"a":1}');
    bad[9] = 0xff;
    expect(parse(bad)).toThrow(/not valid UTF-8/);
  });

  it("unknown dtype", () => {
    expect(parse(rawFile({ a: { dtype: "F8_E4M3", shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)))).toThrow(/unsupported dtype "F8_E4M3"/);
  });

  it("invalid shape and offsets", () => {
    expect(parse(rawFile({ a: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(4)))).toThrow(/invalid shape/);
    expect(parse(rawFile({ a: { dtype: "F32", shape: [1], data_offsets: [4, 0] } }, new Uint8Array(4)))).toThrow(/invalid data_offsets/);
    expect(parse(rawFile({ a: { dtype: "F32", shape: [2], data_offsets: [0, 4] } }, new Uint8Array(8)))).toThrow(/needs 8 bytes but data_offsets span 4/);
  });

  it("truncated data", () => {
    expect(parse(good.subarray(0, good.byteLength - 4))).toThrow(/lies beyond the data section .* truncated/);
  });

  it("data offsets out of range and overlapping", () => {
    expect(parse(rawFile({ a: { dtype: "F32", shape: [1], data_offsets: [8, 12] } }, new Uint8Array(8)))).toThrow(/beyond the data section/);
    const overlapping = rawFile(
      {
        a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
        b: { dtype: "F32", shape: [2], data_offsets: [4, 12] },
      },
      new Uint8Array(12),
    );
    expect(parse(overlapping)).toThrow(/'a' and 'b' have overlapping data_offsets/);
  });

  it("non-string metadata", () => {
    expect(parse(rawFile({ __metadata__: { format: 1 } }))).toThrow(/__metadata__.format must be a string/);
  });

  it("serializer rejects data of the wrong size", () => {
    expect(() => serializeSafetensors({ a: { dtype: "F32", shape: [3], data: new Float32Array(2) } })).toThrow(/needs 12 bytes of data, got 8/);
  });
});
