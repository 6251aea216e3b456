/**
 * The public API of `@midtrain/model` (browser-safe; file I/O is in `./node.ts`,
 * `@midtrain/model/node`): configs, the model, Hugging Face interop and the safetensors format.
 * Everything not listed here (parameter layouts and their conversions, initialization, the
 * safetensors header parser, the fused-op wrappers) is internal to the package.
 */
export {
  countParams,
  flopsPerToken,
  getModelConfig,
  MODEL_PRESETS,
  type ModelConfig,
} from "./config.js";
export { CheckpointError, ModelConfigError, ModelError, ModelInputError, SafetensorsError } from "./errors.js";
export {
  fromHfConfig,
  type HfGPTNeoXConfig,
  modelFromSafetensors,
  modelToSafetensors,
  type SaveDtype,
  toHfConfig,
} from "./hf.js";
export {
  type BufferLimits,
  type CreateModelOptions,
  checkBufferLimits,
  createModel,
  GPTNeoXModel,
  type HfTensor,
  LOSS_CHUNK_AUTO_BYTES,
  type LossChunkTokens,
  type LossOptions,
  type MemoryOptions,
  modelFromHfTensors,
  resolveLossChunkTokens,
  type TensorPlan,
} from "./model.js";
export type { InitKind, ParamLayout, ParamSpec } from "./params.js";
export {
  f32ToBf16,
  f32ToF16,
  parseSafetensors,
  type SafeTensor,
  type SafetensorsData,
  type SafetensorsDtype,
  type SafetensorsSpec,
  serializeSafetensors,
  toFloat32,
} from "./safetensors.js";
