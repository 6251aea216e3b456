import type { Tokenizer } from "./tokenizer.js";

/** UTF-8 bytes covered by the masked-in targets: the denominator of bits per byte. */
export function countTargetBytes(targets: ArrayLike<number>, mask: ArrayLike<number>, tokenizer: Tokenizer): number {
  let n = 0;
  for (let i = 0; i < targets.length; i++) if (mask[i] > 0) n += tokenizer.tokenBytes(targets[i]);
  return n;
}
