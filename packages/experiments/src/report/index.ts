// Report entry: pure rendering (browser-safe, also available alone from ./render.ts) plus
// `writeReport`, which uses Node's fs.
export * from "./render.js";
export { writeReport, writeFileAtomic } from "./write.js";
