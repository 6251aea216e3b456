import * as tf from "@tensorflow/tfjs-core";

const SQRT1_2 = Math.SQRT1_2;

/** Exact GELU, 0.5·x·(1 + erf(x/√2)), the activation GPT-NeoX/Pythia use. */
export function gelu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, SQRT1_2)), 1)));
}

/** The tanh approximation of GELU (for comparison; not what Pythia uses). */
export function geluTanh(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const inner = tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI));
    return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
  });
}
