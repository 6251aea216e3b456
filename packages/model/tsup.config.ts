import { packageBuild } from "../../tsup.base";

// index: browser-safe core; node: file I/O (`@midtrain/model/node`)
export default packageBuild({ entry: ["src/index.ts", "src/node.ts"] });
