import { packageBuild } from "../../tsup.base";

// shims: the addon locates its C source from __dirname / import.meta.url in both formats.
export default packageBuild({ shims: true });
