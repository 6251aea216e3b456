import { packageBuild } from "../../tsup.base";

export default packageBuild({
  // index: browser-safe core; node: file readers and the shipped corpora.
  entry: ["src/index.ts", "src/node.ts"],
  // import.meta.url in the CJS build (files.ts, behind node.ts, locates corpora/ with it).
  shims: true,
});
