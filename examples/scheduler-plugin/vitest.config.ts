import { defineConfig } from "vitest/config";

// The plugin's own test setup, so `npm test` works in a copy of this folder. Inside the midtrain
// repository the root vitest config runs test/**/*.test.ts as the `scheduler-plugin` project;
// test/repo/ holds that repository's own check (copy this folder out, install, build, test) and
// is not part of the template.
export default defineConfig({
  test: {
    include: ["test/*.test.ts"],
    exclude: ["**/node_modules/**", "**/dist/**"],
    testTimeout: 30_000,
  },
});
