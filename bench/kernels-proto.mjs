// Prototype of a batched matmul for tfjs-backend-wasm: runs each batch slice through the
// XNNPACK fully-connected path (the one tfjs uses only for batch 1, untransposed) by
// registering zero-copy views of the slices with the wasm module.
export function installBatchedMatMul(tf) {
  const orig = tf.getKernel("BatchMatMul", "wasm");
  let mm;
  const kernelFunc = (args) => {
    const { inputs, backend, attrs } = args;
    let { a, b } = inputs;
    const { transposeA, transposeB } = attrs;
    const w = backend.wasm;
    mm ??= w.cwrap("BatchMatMul", null, ["number", "array", "number", "number", "array", "number", "number", "number", "number"]);
    const temps = [];
    const transpose = tf.getKernel("Transpose", "wasm").kernelFunc;
    const tr = (x) => {
      const r = x.shape.length;
      const perm = [...Array(r).keys()];
      [perm[r - 1], perm[r - 2]] = [perm[r - 2], perm[r - 1]];
      const t = transpose({ inputs: { x }, backend, attrs: { perm } });
      temps.push(t);
      return t;
    };
    if (transposeA) a = tr(a);
    if (transposeB) b = tr(b);
    try {
      const nA = a.shape.slice(0, -2).reduce((x, y) => x * y, 1);
      const nB = b.shape.slice(0, -2).reduce((x, y) => x * y, 1);
      if (nA === 1 && nB === 1) {
        // Plain 2-D product: tfjs's own XNNPACK path (caches the packed weights per tensor).
        return orig.kernelFunc({ inputs: { a, b }, backend, attrs: { ...attrs, transposeA: false, transposeB: false } });
      }
      const ar = a.shape.length,
        br = b.shape.length;
      const M = a.shape[ar - 2],
        K = a.shape[ar - 1],
        N = b.shape[br - 1];
      const outer = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
      const batchA = a.shape.slice(0, -2).reduce((x, y) => x * y, 1);
      const batchB = b.shape.slice(0, -2).reduce((x, y) => x * y, 1);
      const batch = Math.max(batchA, batchB);
      const out = backend.makeOutput([...outer, M, N], "float32");
      if (batch === 0 || M === 0 || N === 0) return out;
      const aOff = backend.dataIdMap.get(a.dataId).memoryOffset;
      const bOff = backend.dataIdMap.get(b.dataId).memoryOffset;
      const oOff = backend.dataIdMap.get(out.dataId).memoryOffset;
      const aShape = new Uint8Array(new Int32Array([1, M, K]).buffer);
      const bShape = new Uint8Array(new Int32Array([1, K, N]).buffer);
      // Shared B (broadcast): one view, its packed weights reused by every slice.
      const bShared = batchB === 1;
      let bId = 0;
      if (bShared) {
        bId = backend.dataIdNextNumber++;
        w.tfjs.registerTensor(bId, K * N, bOff);
      }
      for (let i = 0; i < batch; i++) {
        const aId = backend.dataIdNextNumber++;
        w.tfjs.registerTensor(aId, M * K, aOff + 4 * M * K * (batchA === 1 ? 0 : i));
        let bi = bId;
        if (!bShared) {
          bi = backend.dataIdNextNumber++;
          w.tfjs.registerTensor(bi, K * N, bOff + 4 * K * N * i);
        }
        const oId = backend.dataIdNextNumber++;
        w.tfjs.registerTensor(oId, M * N, oOff + 4 * M * N * i);
        mm(aId, aShape, 3, bi, bShape, 3, 0, 0, oId);
        w.tfjs.disposeData(aId);
        w.tfjs.disposeData(oId);
        if (!bShared) w.tfjs.disposeData(bi);
      }
      if (bShared) w.tfjs.disposeData(bId);
      return out;
    } finally {
      for (const t of temps) backend.disposeData(t.dataId, true);
    }
  };
  tf.unregisterKernel("BatchMatMul", "wasm");
  tf.registerKernel({ ...orig, kernelFunc });
}

// The BatchMatMul of @midtrain/backend before the batched kernel (commit cfedb71): tfjs-backend-wasm's
// own kernel with transposed operands made explicit; batched products run its scalar loop.
// For before/after measurements in one run.
export async function installOldMatMul(tf) {
  let mm;
  // tfjs-backend-wasm 4.22's BatchMatMul: one call with the operands as rank-3 tensors.
  const wasmKernel = ({ inputs, backend }) => {
    const { a, b } = inputs;
    mm ??= backend.wasm.cwrap("BatchMatMul", null, ["number", "array", "number", "number", "array", "number", "number", "number", "number"]);
    const ar = a.shape.length,
      br = b.shape.length;
    const M = a.shape[ar - 2],
      K = a.shape[ar - 1],
      N = b.shape[br - 1];
    const nA = a.shape.slice(0, -2).reduce((x, y) => x * y, 1),
      nB = b.shape.slice(0, -2).reduce((x, y) => x * y, 1);
    const outer = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
    const out = backend.makeOutput([...outer, M, N], "float32");
    const id = (t) => backend.dataIdMap.get(t.dataId).id;
    const sh = (s) => new Uint8Array(new Int32Array(s).buffer);
    mm(id(a), sh([nA, M, K]), 3, id(b), sh([nB, K, N]), 3, 0, 0, id(out));
    return out;
  };
  const kernelFunc = (args) => {
    const { transposeA, transposeB } = args.attrs;
    const transpose = tf.getKernel("Transpose", "wasm").kernelFunc;
    const temps = [];
    const tr = (x) => {
      const r = x.shape.length;
      const perm = [...Array(r).keys()];
      [perm[r - 1], perm[r - 2]] = [perm[r - 2], perm[r - 1]];
      const t = transpose({ inputs: { x }, backend: args.backend, attrs: { perm } });
      temps.push(t);
      return t;
    };
    const inputs = { a: transposeA ? tr(args.inputs.a) : args.inputs.a, b: transposeB ? tr(args.inputs.b) : args.inputs.b };
    try {
      return wasmKernel({ inputs, backend: args.backend });
    } finally {
      for (const t of temps) args.backend.disposeData(t.dataId, true);
    }
  };
  const orig = tf.getKernel("BatchMatMul", "wasm");
  tf.unregisterKernel("BatchMatMul", "wasm");
  tf.registerKernel({ ...orig, kernelFunc });
}
