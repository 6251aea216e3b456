import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { addonFileName, buildAddon } from "../src/addon.js";
import { loadNativeBlas, NativeBlasUnavailableError, tryLoadNativeBlas } from "../src/index.js";

// Under CI (and with MIDTRAIN_NATIVE_BLAS=1) the native path must work: .ci/run installs a C
// compiler and OpenBLAS. Elsewhere the suites that need it are skipped with the reason in their
// titles (scripts/test-all.mjs lists it).
const required = process.env.CI === "true" || process.env.CI === "1" || process.env.MIDTRAIN_NATIVE_BLAS === "1";
const probe = tryLoadNativeBlas();
const missing = required || probe.blas ? undefined : `the native BLAS does not load here: ${probe.reason}`;
if (missing) console.warn(`[native-blas] skipping: ${probe.reason}`);
const titled = (title: string) => (missing === undefined ? title : `${title} [skipped: ${missing}]`);
/** A suite, or a test, that needs the addon and a BLAS library. */
const run = (title: string, body: () => void) => describe.skipIf(missing !== undefined)(titled(title), body);
const itNative = (title: string, body: () => void) => it.skipIf(missing !== undefined)(titled(title), body);

/** Float64 reference: C[i] = op(A[i])·op(B[i]). */
function reference(batch: number, ta: boolean, tb: boolean, M: number, N: number, K: number, A: Float32Array, sA: number, B: Float32Array, sB: number) {
  const C = new Float64Array(batch * M * N);
  for (let i = 0; i < batch; i++)
    for (let m = 0; m < M; m++)
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          const a = ta ? A[i * sA + k * M + m] : A[i * sA + m * K + k];
          const b = tb ? B[i * sB + n * K + k] : B[i * sB + k * N + n];
          s += a * b;
        }
        C[i * M * N + m * N + n] = s;
      }
  return C;
}

function seeded(n: number, seed: number): Float32Array {
  let x = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = ((x >>> 0) / 2 ** 32) * 2 - 1;
  }
  return out;
}

function maxErr(a: ArrayLike<number>, b: ArrayLike<number>) {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]) / (1 + Math.abs(b[i])));
  return m;
}

run("native sgemm", () => {
  const blas = required ? loadNativeBlas() : probe.blas!;

  it("opens a CBLAS library and reports it", () => {
    expect(blas.library).toMatch(/blas|Accelerate/i);
    expect(existsSync(blas.addonPath)).toBe(true);
  });

  for (const [ta, tb] of [
    [false, false],
    [false, true],
    [true, false],
    [true, true],
  ] as const) {
    it(`matches a float64 reference (transposeA ${ta}, transposeB ${tb}, batched and broadcast)`, () => {
      const M = 37;
      const N = 29;
      const K = 53;
      for (const [batch, bA, bB] of [
        [1, 1, 1],
        [3, 3, 3],
        [4, 4, 1],
        [4, 1, 4],
      ]) {
        const A = seeded(bA * M * K, 7 + batch);
        const B = seeded(bB * K * N, 11 + batch);
        const C = new Float32Array(batch * M * N);
        const sA = bA === 1 ? 0 : M * K;
        const sB = bB === 1 ? 0 : K * N;
        blas.sgemmBatch(batch, ta, tb, M, N, K, A, sA, B, sB, C, M * N);
        expect(maxErr(C, reference(batch, ta, tb, M, N, K, A, sA, B, sB))).toBeLessThan(1e-5);
      }
    });
  }

  it("reads and writes only inside offset views (wasm-heap style)", () => {
    const heap = new Float32Array(1000).fill(-7);
    const A = new Float32Array(heap.buffer, 4 * 10, 6);
    A.set([1, 2, 3, 4, 5, 6]);
    const B = new Float32Array(heap.buffer, 4 * 100, 6);
    B.set([1, 0, 0, 1, 1, 1]);
    const C = new Float32Array(heap.buffer, 4 * 500, 4);
    blas.sgemmBatch(1, false, false, 2, 2, 3, A, 0, B, 0, C, 4);
    expect([...C]).toEqual([4, 5, 10, 11]);
    expect(heap[499]).toBe(-7);
    expect(heap[504]).toBe(-7);
  });

  it("K = 0 gives zeros and empty products are no-ops", () => {
    const C = new Float32Array(6).fill(3);
    blas.sgemmBatch(2, false, false, 1, 3, 0, new Float32Array(0), 0, new Float32Array(0), 0, C, 3);
    expect([...C]).toEqual([0, 0, 0, 0, 0, 0]);
    expect(() => blas.sgemmBatch(0, false, false, 4, 4, 4, new Float32Array(0), 16, new Float32Array(0), 16, new Float32Array(0), 16)).not.toThrow();
  });

  it("refuses views that are too short, wrong types, negative sizes and overlapping outputs", () => {
    const f = (n: number) => new Float32Array(n);
    expect(() => blas.sgemmBatch(2, false, false, 2, 2, 3, f(6), 6, f(6), 0, f(8), 4)).toThrow(/A holds 6 floats, the product needs 12/);
    expect(() => blas.sgemmBatch(1, false, false, 2, 2, 3, f(6), 0, f(5), 0, f(4), 4)).toThrow(RangeError);
    expect(() => blas.sgemmBatch(1, false, false, 2, 2, 3, f(6), 0, f(6), 0, f(3), 4)).toThrow(/C holds 3/);
    expect(() => blas.sgemmBatch(1, false, false, 2, 2, 3, new Float64Array(6) as never, 0, f(6), 0, f(4), 4)).toThrow(TypeError);
    expect(() => blas.sgemmBatch(1, false, false, -2, 2, 3, f(6), 0, f(6), 0, f(4), 4)).toThrow(/M must be/);
    expect(() => blas.sgemmBatch(2, false, false, 2, 2, 3, f(12), 6, f(6), 0, f(8), 2)).toThrow(/strideC/);
    expect(() => (blas.sgemmBatch as (...a: unknown[]) => void)(1, false)).toThrow(/12 arguments/);
    expect(() => blas.sgemmBatch(Number.NaN, false, false, 2, 2, 3, f(6), 0, f(6), 0, f(4), 4)).toThrow(/batch must be an integer/);
    expect(() => blas.sgemmBatch(1, false, false, 2.5, 2, 3, f(6), 0, f(6), 0, f(4), 4)).toThrow(/M must be an integer/);
  });

  it("sets the thread count on OpenBLAS; on a library that cannot, threads() is -1 and setThreads changes nothing", () => {
    expect(() => blas.setThreads(0)).toThrow(RangeError);
    // OpenBLAS exports openblas_get_config (so config is non-empty) next to its thread calls.
    if (/openblas/i.test(blas.library)) expect(blas.config).toMatch(/openblas/i);
    const before = blas.threads();
    if (blas.config !== "") {
      expect(before).toBeGreaterThanOrEqual(1);
      blas.setThreads(1);
      expect(blas.threads()).toBe(1);
      blas.setThreads(before);
      expect(blas.threads()).toBe(before);
    } else {
      expect(before).toBe(-1);
      blas.setThreads(1);
      expect(blas.threads()).toBe(-1);
    }
  });
});

describe("building the addon", () => {
  const dirs: string[] = [];
  const temp = () => {
    const d = mkdtempSync(join(tmpdir(), "midtrain-blas-"));
    dirs.push(d);
    return d;
  };
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("a missing compiler is a clear error and leaves nothing behind", () => {
    const dir = temp();
    let err: unknown;
    try {
      loadNativeBlas({ cacheDir: dir, compiler: join(dir, "no-such-cc") });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NativeBlasUnavailableError);
    expect((err as NativeBlasUnavailableError).stage).toBe("build");
    expect((err as Error).message).toMatch(/not found.*install a C compiler/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it("a compiler that fails (bad flags) leaves no partial file", () => {
    const dir = temp();
    expect(() => buildAddon(dir, { compiler: "false" })).toThrow(NativeBlasUnavailableError);
    expect(readdirSync(dir)).toEqual([]);
  });

  it("build: false does not compile", () => {
    const dir = temp();
    expect(() => loadNativeBlas({ cacheDir: dir, build: false })).toThrow(/not built/);
    expect(readdirSync(dir)).toEqual([]);
  });

  itNative("a cached addon that does not load is rebuilt once", () => {
    const dir = temp();
    writeFileSync(join(dir, addonFileName()), "not a shared object");
    const blas = loadNativeBlas({ cacheDir: dir });
    expect(blas.addonPath).toBe(join(dir, addonFileName()));
    expect(readdirSync(dir)).toEqual([addonFileName()]);
    expect(() => loadNativeBlas({ cacheDir: temp(), build: false })).toThrow(/not built/);
  });

  itNative("compiles into the cache folder under a name tied to the source", () => {
    const dir = temp();
    const path = buildAddon(dir);
    expect(readdirSync(dir)).toEqual([addonFileName()]);
    expect(path).toBe(join(dir, addonFileName()));
    // A second load finds it instead of compiling again.
    expect(loadNativeBlas({ cacheDir: dir, build: false }).addonPath).toBe(path);
  });
});

run("native softmax cross-entropy", () => {
  const blas = required ? loadNativeBlas() : probe.blas!;
  const N = 5;
  const V = 301;
  const z = seeded(N * V, 5).map((x) => 4 * x);
  const t = Int32Array.from([0, 300, 17, 17, 150]);

  function ref() {
    const nll = new Float64Array(N);
    const lse = new Float64Array(N);
    const grad = new Float64Array(N * V);
    const dy = [0.5, -1, 2, 0.25, 1];
    for (let i = 0; i < N; i++) {
      let m = -Infinity;
      for (let j = 0; j < V; j++) m = Math.max(m, z[i * V + j]);
      let s = 0;
      for (let j = 0; j < V; j++) s += Math.exp(z[i * V + j] - m);
      lse[i] = m + Math.log(s);
      nll[i] = lse[i] - z[i * V + t[i]];
      for (let j = 0; j < V; j++) grad[i * V + j] = dy[i] * (Math.exp(z[i * V + j] - lse[i]) - (j === t[i] ? 1 : 0));
    }
    return { nll, lse, grad, dy: Float32Array.from(dy) };
  }

  it("forward and gradient match a float64 reference", () => {
    const r = ref();
    const nll = new Float32Array(N);
    const lse = new Float32Array(N);
    blas.xentForward(N, V, z, t, nll, lse);
    expect(maxErr(nll, r.nll)).toBeLessThan(2e-6);
    expect(maxErr(lse, r.lse)).toBeLessThan(2e-6);
    const g = new Float32Array(N * V);
    blas.xentBackward(N, V, z, t, lse, r.dy, g);
    expect(maxErr(g, r.grad)).toBeLessThan(2e-6);
  });

  it("very negative and -inf logits contribute nothing (finite loss); a huge logit dominates", () => {
    const V2 = 4;
    const zz = Float32Array.from([0, -1e30, Number.NEGATIVE_INFINITY, -200, 50, 49, -1e6, 0]);
    const nll = new Float32Array(2);
    const lse = new Float32Array(2);
    blas.xentForward(2, V2, zz, Int32Array.from([0, 1]), nll, lse);
    expect(nll[0]).toBeCloseTo(0, 6);
    expect(lse[1]).toBeCloseTo(50 + Math.log(1 + Math.exp(-1)), 5);
    expect(nll[1]).toBeCloseTo(1 + Math.log(1 + Math.exp(-1)), 5);
  });

  it("NaN logits give NaN, not a finite loss; bad targets and short views are errors", () => {
    const zz = z.slice();
    zz[V + 3] = Number.NaN;
    const nll = new Float32Array(N);
    const lse = new Float32Array(N);
    blas.xentForward(N, V, zz, t, nll, lse);
    expect(Number.isNaN(nll[1])).toBe(true);
    expect(Number.isFinite(nll[0])).toBe(true);
    expect(() => blas.xentForward(N, V, z, Int32Array.from([0, 1, 2, 3, V]), nll, lse)).toThrow(/target 301 at row 4 is outside the vocabulary \[0, 301\)/);
    expect(() => blas.xentForward(N, V, z, Int32Array.from([0, 1, -1, 3, 4]), nll, lse)).toThrow(RangeError);
    expect(() => blas.xentForward(N, V, z.subarray(1), t, nll, lse)).toThrow(/logits holds/);
    expect(() => blas.xentForward(N, V, z, Float32Array.from(t) as never, nll, lse)).toThrow(/targets must be an Int32Array/);
    expect(() => blas.xentBackward(N, V, z, t, lse, new Float32Array(N), new Float32Array(N * V - 1))).toThrow(/dlogits holds/);
  });
});

run("native GELU and AdamW", () => {
  const blas = required ? loadNativeBlas() : probe.blas!;
  // erf from its Maclaurin series (float64; |x| ≤ 3 here, enough terms for 1e-12).
  const erf = (x: number) => {
    let sum = 0;
    let term = x;
    for (let k = 0; k < 80; k++) {
      sum += term / (2 * k + 1);
      term *= (-x * x) / (k + 1);
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  };

  it("GELU and its gradient match float64 references", () => {
    const n = 1001;
    const x = seeded(n, 9).map((v) => 3 * v);
    const dy = seeded(n, 10);
    const y = new Float32Array(n);
    const dx = new Float32Array(n);
    blas.geluForward(n, x, y);
    blas.geluBackward(n, x, dy, dx);
    const yRef = Array.from(x, (v) => 0.5 * v * (1 + erf(v / Math.SQRT2)));
    const dxRef = Array.from(x, (v, i) => dy[i] * (0.5 * (1 + erf(v / Math.SQRT2)) + (v * Math.exp(-0.5 * v * v)) / Math.sqrt(2 * Math.PI)));
    expect(maxErr(y, yRef)).toBeLessThan(1e-6);
    expect(maxErr(dx, dxRef)).toBeLessThan(1e-6);
    expect(() => blas.geluForward(n, x, new Float32Array(n - 1))).toThrow(/y holds 1000 floats/);
  });

  it("AdamW matches a float64 step, in place or not", () => {
    const n = 513;
    const [p, g, m] = [seeded(n, 1), seeded(n, 2).map((v) => 0.1 * v), seeded(n, 3).map((v) => 0.01 * v)];
    const v = seeded(n, 4).map((x) => 1e-4 * Math.abs(x));
    const h = { b1: 0.9, b2: 0.95, eps: 1e-8, decay: 1 - 3e-5, step: 3e-4 / (1 - 0.9 ** 2), sqrtBc2: Math.sqrt(1 - 0.95 ** 2) };
    const ref = Array.from(p, (pi, i) => {
      const mi = h.b1 * m[i] + (1 - h.b1) * g[i];
      const vi = h.b2 * v[i] + (1 - h.b2) * g[i] * g[i];
      return [pi * h.decay - (h.step * mi) / (Math.sqrt(vi) / h.sqrtBc2 + h.eps), mi, vi];
    });
    const [P, M, V] = [new Float32Array(n), new Float32Array(n), new Float32Array(n)];
    blas.adamw(n, p, g, m, v, P, M, V, h.b1, h.b2, h.eps, h.decay, h.step, h.sqrtBc2);
    expect(
      maxErr(
        P,
        ref.map((r) => r[0]),
      ),
    ).toBeLessThan(1e-6);
    expect(
      maxErr(
        M,
        ref.map((r) => r[1]),
      ),
    ).toBeLessThan(1e-7);
    expect(
      maxErr(
        V,
        ref.map((r) => r[2]),
      ),
    ).toBeLessThan(1e-9);
    // In place (outputs aliasing inputs) gives the same numbers.
    const [p2, m2, v2] = [p.slice(), m.slice(), v.slice()];
    blas.adamw(n, p2, g, m2, v2, p2, m2, v2, h.b1, h.b2, h.eps, h.decay, h.step, h.sqrtBc2);
    expect([...p2]).toEqual([...P]);
    expect(() => blas.adamw(n, p, g, m, v, P, M, new Float32Array(3), h.b1, h.b2, h.eps, h.decay, h.step, h.sqrtBc2)).toThrow(/V holds 3/);
  });
});

run("native LayerNorm", () => {
  const blas = required ? loadNativeBlas() : probe.blas!;
  const R = 7;
  const C = 33;
  const eps = 1e-5;
  const x = seeded(R * C, 21).map((v) => 3 * v + 0.5);
  const gamma = seeded(C, 22).map((v) => 1 + 0.5 * v);
  const beta = seeded(C, 23);
  const dy = seeded(R * C, 24);

  /** Float64 LayerNorm and its gradient, straight from the definitions. */
  function ref() {
    const y = new Float64Array(R * C);
    const dx = new Float64Array(R * C);
    const dg = new Float64Array(C);
    const db = new Float64Array(C);
    for (let r = 0; r < R; r++) {
      const row = Array.from(x.subarray(r * C, (r + 1) * C));
      const mu = row.reduce((a, b) => a + b, 0) / C;
      const varr = row.reduce((a, b) => a + (b - mu) ** 2, 0) / C;
      const rs = 1 / Math.sqrt(varr + eps);
      const xh = row.map((v) => (v - mu) * rs);
      const g = xh.map((_, c) => dy[r * C + c] * gamma[c]);
      const mg = g.reduce((a, b) => a + b, 0) / C;
      const mgx = g.reduce((a, b, c) => a + b * xh[c], 0) / C;
      for (let c = 0; c < C; c++) {
        y[r * C + c] = xh[c] * gamma[c] + beta[c];
        dx[r * C + c] = rs * (g[c] - mg - xh[c] * mgx);
        dg[c] += dy[r * C + c] * xh[c];
        db[c] += dy[r * C + c];
      }
    }
    return { y, dx, dg, db };
  }

  it("forward and gradient match float64 references", () => {
    const r = ref();
    const y = new Float32Array(R * C);
    const mean = new Float32Array(R);
    const rstd = new Float32Array(R);
    blas.layerNormForward(R, C, x, gamma, beta, eps, y, mean, rstd);
    expect(maxErr(y, r.y)).toBeLessThan(2e-6);
    const dx = new Float32Array(R * C);
    const dg = new Float32Array(C).fill(9);
    const db = new Float32Array(C).fill(9);
    blas.layerNormBackward(R, C, x, gamma, mean, rstd, dy, dx, dg, db);
    expect(maxErr(dx, r.dx)).toBeLessThan(5e-6);
    expect(maxErr(dg, r.dg)).toBeLessThan(5e-6);
    expect(maxErr(db, r.db)).toBeLessThan(5e-6);
    expect(() => blas.layerNormForward(R, C, x, gamma.subarray(1), beta, eps, y, mean, rstd)).toThrow(/gamma holds 32/);
    expect(() => blas.layerNormBackward(R, C, x, gamma, mean, rstd, dy, dx, dg, new Float32Array(2))).toThrow(/dbeta holds 2/);
  });
});

run("native rotary embedding", () => {
  const blas = required ? loadNativeBlas() : probe.blas!;
  const T = 5;
  const heads = 3;
  const hd = 8;
  const half = 2; // 4 of 8 dims rotated, 4 pass through
  const D = heads * hd;
  const R = 2 * T;
  const x = seeded(R * D, 31);
  const cos = seeded(T * D, 32);
  const sin = seeded(T * D, 33);
  const pair = (j: number) => {
    const i = j % hd;
    if (i < half) return j + half;
    if (i < 2 * half) return j - half;
    return -1;
  };
  it("forward and gradient match the definitions, and the gradient is the forward's transpose", () => {
    const y = new Float32Array(R * D);
    blas.rotary(R, T, D, hd, half, x, cos, sin, y, false);
    const dy = seeded(R * D, 34);
    const dx = new Float32Array(R * D);
    blas.rotary(R, T, D, hd, half, dy, cos, sin, dx, true);
    const yRef = new Float64Array(R * D);
    const dxRef = new Float64Array(R * D);
    for (let r = 0; r < R; r++) {
      const t = r % T;
      for (let j = 0; j < D; j++) {
        const p = pair(j);
        yRef[r * D + j] = x[r * D + j] * cos[t * D + j] + (p < 0 ? 0 : x[r * D + p] * sin[t * D + j]);
        dxRef[r * D + j] = dy[r * D + j] * cos[t * D + j] + (p < 0 ? 0 : dy[r * D + p] * sin[t * D + p]);
      }
    }
    expect(maxErr(y, yRef)).toBeLessThan(1e-6);
    expect(maxErr(dx, dxRef)).toBeLessThan(1e-6);
    // <dy, f(x)> = <f^T(dy), x> for the linear map f.
    let lhs = 0;
    let rhs = 0;
    for (let i = 0; i < R * D; i++) {
      lhs += dy[i] * y[i];
      rhs += dx[i] * x[i];
    }
    expect(Math.abs(lhs - rhs)).toBeLessThan(1e-4 * (1 + Math.abs(lhs)));
    expect(() => blas.rotary(R, T, D, 7, half, x, cos, sin, y, false)).toThrow(/multiple of headDim/);
    expect(() => blas.rotary(R, T, D, hd, half, x, cos, sin, x, false)).toThrow(/in place/);
    expect(() => blas.rotary(R, T, D, hd, half, x, cos.subarray(1), sin, y, false)).toThrow(/cos holds/);
  });
});
