/**
 * The project's one seeded pseudo-random generator and one string hash.
 *
 * The generator is sfc32 (128-bit state of four uint32 words, so it saves to JSON and restores
 * exactly). Integer math only, plus Math.log/cos/sin for normals, so equal seeds give equal
 * numbers on every platform. It has two ways of being seeded, each kept bit-for-bit because
 * results depend on them:
 * - `new Rng(seed, ...parts)`: the general one (the data mixer's draws and shuffles), seed and
 *   parts folded with {@link hashString} and expanded with splitmix32;
 * - `Rng.forParameter(seed, name)`: the stream each parameter's initial weights come from in
 *   @midtrain/model.
 */

export type RngState = [number, number, number, number];

/** 32-bit FNV-1a hash of a string's UTF-16 code units: names to seeds, config fingerprints. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** splitmix32: expands one 32-bit seed into a stream of well-mixed words. */
function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/**
 * One state word of a parameter stream: `name` mixed with `seed` by two multiply-xorshift lanes.
 * Only {@link Rng.forParameter} uses it; changing it would change every initial weight.
 */
function parameterWord(name: string, seed: number): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (h1 ^ h2) >>> 0;
}

/** Draws discarded after seeding, so nearby seeds do not start with related numbers. */
const WARMUP_DRAWS = 12;

function isState(state: unknown): state is RngState {
  return Array.isArray(state) && state.length === 4 && state.every((x) => Number.isInteger(x) && x >= 0 && x <= 0xffffffff);
}

/** Small fast counting generator (sfc32). */
export class Rng {
  private a = 0;
  private b = 0;
  private c = 0;
  private d = 0;

  /**
   * `seed` is a number or a string; extra `parts` (a source name, an epoch...) derive an
   * independent stream. Numbers beyond 32 bits fold their high bits in.
   */
  constructor(seed: number | string = 0, ...parts: (number | string)[]) {
    let h = typeof seed === "string" ? hashString(seed) : seed >>> 0;
    if (typeof seed === "number" && Math.abs(seed) > 0xffffffff) h ^= Math.floor(seed / 0x100000000) >>> 0;
    for (const p of parts) h = hashString(`${h}:${typeof p === "string" ? `s${p}` : `n${p}`}`);
    const next = splitmix32(h);
    this.start([next(), next(), next(), next()]);
  }

  /** A generator that continues from a saved {@link getState}. */
  static fromState(state: RngState): Rng {
    const r = new Rng(0);
    r.setState(state);
    return r;
  }

  /**
   * The stream of one named parameter's initial weights for a model seed (uint32): the same
   * seed and name always give the same weights, and each parameter has its own stream.
   */
  static forParameter(seed: number, name: string): Rng {
    const r = new Rng(0);
    r.start([parameterWord(name, seed), parameterWord(name, seed ^ 0x9e3779b9), parameterWord(name, seed ^ 0x85ebca6b), 1]);
    return r;
  }

  private start(words: RngState): void {
    [this.a, this.b, this.c, this.d] = words;
    for (let i = 0; i < WARMUP_DRAWS; i++) this.nextUint32();
  }

  /** Uniform integer in [0, 2^32). */
  nextUint32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = (this.b ^ (this.b >>> 9)) >>> 0;
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** Uniform float in [0, 1) with 53 random bits (two draws). */
  nextFloat(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform float in (0, 1), never exactly 0 (one draw). */
  uniform(): number {
    return (this.nextUint32() + 0.5) / 4294967296;
  }

  /** Uniform integer in [0, n), unbiased (rejection sampling). */
  nextInt(n: number): number {
    if (!(n > 0) || n > 0x100000000 || !Number.isInteger(n)) throw new RangeError(`nextInt: n must be an integer in [1, 2^32], got ${n}`);
    const limit = 0x100000000 - (0x100000000 % n);
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % n;
    }
  }

  /** Fills `out` with N(0, std²) samples (Box-Muller, two uniforms per pair of values). */
  fillNormal(out: Float32Array, std: number): Float32Array {
    for (let i = 0; i < out.length; i += 2) {
      const u1 = this.uniform();
      const u2 = this.uniform();
      const r = Math.sqrt(-2 * Math.log(u1)) * std;
      out[i] = r * Math.cos(2 * Math.PI * u2);
      if (i + 1 < out.length) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
    }
    return out;
  }

  getState(): RngState {
    return [this.a, this.b, this.c, this.d];
  }

  setState(state: RngState): void {
    if (!isState(state)) throw new TypeError("RNG state must be an array of four uint32 numbers");
    [this.a, this.b, this.c, this.d] = state;
  }
}

/** A seeded permutation of 0..n-1 (Fisher–Yates). */
export function permutation(n: number, rng: Rng): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.nextInt(i + 1);
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}
