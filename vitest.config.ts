import { readdirSync, existsSync } from "node:fs";
import { resolve } from "node:path";
import { defineConfig } from "vitest/config";

const root = import.meta.dirname;

// Workspace packages resolve to their TypeScript sources in tests, so a test never runs
// against a stale build. Subpath entries (`@midtrain/model/node`) map to `src/<name>.ts`.
const alias = [
  { find: /^@midtrain\/([a-z0-9-]+)\/([a-z0-9-]+)$/, replacement: `${root}/packages/$1/src/$2.ts` },
  { find: /^@midtrain\/([a-z0-9-]+)$/, replacement: `${root}/packages/$1/src/index.ts` },
];

const dirs = ["packages", "examples"].flatMap((group) =>
  existsSync(resolve(root, group))
    ? readdirSync(resolve(root, group), { withFileTypes: true })
        .filter((d) => d.isDirectory() && existsSync(resolve(root, group, d.name, "package.json")))
        .map((d) => ({ name: d.name, dir: resolve(root, group, d.name) }))
    : [],
);

export default defineConfig({
  resolve: { alias },
  test: {
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    projects: dirs.map(({ name, dir }) => ({
      extends: true,
      test: {
        name,
        root: dir,
        include: ["test/**/*.test.ts"],
        exclude: ["**/node_modules/**", "**/dist/**", "test/browser/**"],
      },
    })),
  },
});
