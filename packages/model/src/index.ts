export {
  BYTE_VOCAB_SIZE,
  closestName,
  countParams,
  derivedSizes,
  flopsPerToken,
  getModelConfig,
  MODEL_PRESETS,
  type ModelConfig,
  PYTHIA_VOCAB_SIZE,
  padVocab,
  validateConfig,
} from "./config.js";
export { CheckpointError, ModelConfigError, ModelError, ModelInputError, SafetensorsError } from "./errors.js";
export {
  fromHfConfig,
  type HfGPTNeoXConfig,
  modelFromSafetensors,
  modelToSafetensors,
  type SaveDtype,
  safeTensorsToHf,
  toHfConfig,
} from "./hf.js";
export {
  type CreateModelOptions,
  createModel,
  GPTNeoXModel,
  gelu,
  type HfTensor,
  modelFromHfTensors,
} from "./model.js";
export { type InitKind, initStd, type ParamSpec, paramSpecs, storedShape, transpose2d } from "./params.js";
export { hashString, Rng } from "./rng.js";
export {
  decodeTensor,
  dtypeBytes,
  f32ToBf16,
  f32ToF16,
  MAX_HEADER_BYTES,
  parseHeader,
  parseSafetensors,
  readHeaderLength,
  type SafeTensor,
  type SafetensorsData,
  type SafetensorsDtype,
  type SafetensorsEntry,
  type SafetensorsHeader,
  serializeSafetensors,
  toFloat32,
} from "./safetensors.js";
