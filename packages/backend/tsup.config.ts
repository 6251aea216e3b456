import { packageBuild } from "../../tsup.base";

export default packageBuild({
  // tfjs-core's gradient and chained-op registrations exist only as ES modules with extensionless
  // relative imports, which Node cannot load: bundle them (and the core modules they reach, which
  // share tfjs-core's engine and registries through its globals) instead of importing them.
  noExternal: [/^@tensorflow\/tfjs-core\/dist\//],
});
