import { packageBuild } from "../../tsup.base";

export default packageBuild({
  esbuildOptions(options) {
    // loadPlugin reads import.meta.resolve when present and falls back to import() when the
    // CJS build leaves import.meta empty, so the warning about it is expected.
    options.logOverride = { ...options.logOverride, "empty-import-meta": "silent" };
  },
});
