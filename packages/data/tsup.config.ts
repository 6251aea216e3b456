import { packageBuild } from "../../tsup.base";

export default packageBuild({
  // index: browser-safe core; node: file readers and the shipped corpora.
  // prepare-worker: the worker thread `prepare` starts (found next to the built node entry).
  entry: ["src/index.ts", "src/node.ts", "src/prepare-worker.ts"],
  // import.meta.url in the CJS build (files.ts, behind node.ts, locates corpora/ with it).
  shims: true,
});
