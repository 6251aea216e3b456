// The report for use inside the package (the CLI): the browser-safe rendering of ./render.ts
// plus `writeReport`, which uses Node's fs (the package exports it from `/node`).
export * from "./render.js";
export { writeReport, writeFileAtomic } from "./write.js";
