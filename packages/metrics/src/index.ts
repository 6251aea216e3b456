export * from "./errors.js";
export * from "./loss.js";
export * from "./forgetting.js";
export * from "./stats.js";
export * from "./similarity.js";
export * from "./cka.js";
