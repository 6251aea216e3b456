import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import * as api from "../src/index.js";

// Loading the module opens nothing (no addon, no BLAS), so this runs on every machine.
describe("README API", () => {
  it("documents every value the entry exports, and the entry exports no addon internals", () => {
    const readme = readFileSync(join(import.meta.dirname, "..", "README.md"), "utf8");
    const apiSection = readme.split("## API")[1] ?? "";
    const names = Object.keys(api).sort();
    expect(names).toEqual(["NativeBlasUnavailableError", "loadNativeBlas", "tryLoadNativeBlas"]);
    expect(names.filter((n) => !apiSection.includes(`\`${n}`))).toEqual([]);
  });
});
