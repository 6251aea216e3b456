// Minimal AdamW for the bench (same update as torch.optim.AdamW and @midtrain/trainer's AdamW):
//   m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2
//   p = p (1 - lr wd) - lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
// No weight decay on biases and LayerNorm parameters.
export class BenchAdamW {
  constructor(tf, { beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weightDecay = 0.1 } = {}) {
    Object.assign(this, { tf, beta1, beta2, eps, weightDecay });
    this.m = new Map();
    this.v = new Map();
    this.t = 0;
  }
  decays(name) {
    return this.weightDecay > 0 && !/\.bias$|layer_?norm/.test(name);
  }
  apply(params, grads, lr) {
    const tf = this.tf;
    this.t++;
    const { beta1, beta2, eps, weightDecay } = this;
    const bc1 = 1 - beta1 ** this.t;
    const sqrtBc2 = Math.sqrt(1 - beta2 ** this.t);
    const stepSize = lr / bc1;
    for (const [name, g] of grads) {
      const p = params.get(name);
      if (!this.m.has(name)) {
        this.m.set(name, tf.variable(tf.zerosLike(p), false));
        this.v.set(name, tf.variable(tf.zerosLike(p), false));
      }
      const m = this.m.get(name);
      const v = this.v.get(name);
      const decay = this.decays(name) ? 1 - lr * weightDecay : 1;
      tf.tidy(() => {
        const m1 = tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1));
        const v1 = tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2));
        const denom = tf.add(tf.div(tf.sqrt(v1), sqrtBc2), eps);
        const decayed = decay === 1 ? p : tf.mul(p, decay);
        const p1 = tf.sub(decayed, tf.mul(tf.div(m1, denom), stepSize));
        m.assign(m1);
        v.assign(v1);
        p.assign(p1);
      });
    }
  }
  dispose() {
    for (const s of [...this.m.values(), ...this.v.values()]) s.dispose();
    this.m.clear();
    this.v.clear();
  }
}
