// Experimental changes measured by the bench (--variant a,b,...), applied before the model is built.
import { installBatchedMatMul } from "./kernels-proto.mjs";

export async function applyVariant(spec, ctx) {
  for (const v of spec.split(",")) {
    if (v === "bmm") installBatchedMatMul(ctx.tf);
    else throw new Error(`unknown variant '${v}'`);
  }
}
