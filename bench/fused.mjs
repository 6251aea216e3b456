// Model-level fusion prototypes (applied by bench/variants.mjs as monkeypatches of
// @midtrain/model's GPTNeoXModel; the exact change for the model package is in
// docs/performance.md).
//
// fusedce: the loss's logSoftmax + gather + (backward) exp + scatter as two kernels, one pass
// over the logits each way: forward writes nll[n] and logsumexp[n]; backward writes
// dy[n] * (softmax - onehot). Saves the [N, V] logSoftmax and its exp ([N, V] each).
function heapViews(backend) {
  if (backend.wasm) {
    const heap = () => backend.wasm.HEAPF32.buffer;
    const off = (t) => backend.dataIdMap.get(t.dataId).memoryOffset;
    return {
      f32: (t, n) => new Float32Array(heap(), off(t), n),
      i32: (t, n) => new Int32Array(heap(), off(t), n),
      out: (shape) => backend.makeOutput(shape, "float32"),
      outView: (o, n) => new Float32Array(heap(), off(o), n),
    };
  }
  // cpu backend: values live in JS arrays.
  return {
    f32: (t) => backend.readSync(t.dataId),
    i32: (t) => backend.readSync(t.dataId),
    out: (shape) => ({ shape, n: shape.reduce((a, b) => a * b, 1) }),
    outView: (o) => (o.values = new Float32Array(o.n)),
  };
}

function finish(backend, o, dtype = "float32") {
  if (backend.wasm) return o;
  return { dataId: backend.write(o.values, o.shape, dtype), shape: o.shape, dtype };
}

export function installFusedCE(tf, M) {
  for (const backendName of ["wasm", "cpu"]) {
    tf.registerKernel({
      kernelName: "MidtrainSoftmaxCE",
      backendName,
      kernelFunc: ({ inputs, backend }) => {
        const { logits, targets } = inputs;
        const [N, V] = logits.shape;
        const h = heapViews(backend);
        const nllO = h.out([N]);
        const lseO = h.out([N]);
        const z = h.f32(logits, N * V);
        const t = h.i32(targets, N);
        const nll = h.outView(nllO, N);
        const lse = h.outView(lseO, N);
        for (let n = 0; n < N; n++) {
          const base = n * V;
          let mx = -Infinity;
          for (let v = 0; v < V; v++) if (z[base + v] > mx) mx = z[base + v];
          let s = 0;
          for (let v = 0; v < V; v++) s += Math.exp(z[base + v] - mx);
          const l = mx + Math.log(s);
          lse[n] = l;
          nll[n] = l - z[base + t[n]];
        }
        return [finish(backend, nllO), finish(backend, lseO)];
      },
    });
    tf.registerKernel({
      kernelName: "MidtrainSoftmaxCEGrad",
      backendName,
      kernelFunc: ({ inputs, backend }) => {
        const { logits, targets, lse, dy } = inputs;
        const [N, V] = logits.shape;
        const h = heapViews(backend);
        const gO = h.out([N, V]);
        const z = h.f32(logits, N * V);
        const t = h.i32(targets, N);
        const l = h.f32(lse, N);
        const d = h.f32(dy, N);
        const g = h.outView(gO, N * V);
        for (let n = 0; n < N; n++) {
          const base = n * V;
          const ln = l[n];
          const dn = d[n];
          for (let v = 0; v < V; v++) g[base + v] = dn * Math.exp(z[base + v] - ln);
          g[base + t[n]] -= dn;
        }
        return finish(backend, gO);
      },
    });
  }
  const fusedCE = (logits, targets) => {
    const f = tf.customGrad((z, save) => {
      const [nll, lse] = tf.engine().runKernel("MidtrainSoftmaxCE", { logits: z, targets }, {});
      save([z, lse]);
      return {
        value: nll,
        gradFunc: (dy, [zs, ls]) => [tf.engine().runKernel("MidtrainSoftmaxCEGrad", { logits: zs, targets, lse: ls, dy }, {})],
      };
    });
    return f(logits);
  };
  M.GPTNeoXModel.prototype.nll = function nll(ids, targets, B, T) {
    return fusedCE(this.logits2d(ids, B, T), tf.reshape(targets, [B * T]));
  };
}
