import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";

// The core entry must not pull in Node built-ins, so a browser bundle of `@midtrain/data` works.
describe("browser-safe core", () => {
  it("nothing reachable from src/index.ts imports node:* or the Node-only modules", () => {
    const src = resolve(import.meta.dirname, "../src");
    const seen = new Set<string>();
    const offending: string[] = [];
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const text = readFileSync(file, "utf8");
      for (const m of text.matchAll(/(?:import|export)[^;]*?from\s+"([^"]+)"/g)) {
        const spec = m[1];
        if (spec.startsWith("node:") || ["fs", "path", "zlib", "readline", "hyparquet"].includes(spec)) offending.push(`${file}: ${spec}`);
        if (spec.startsWith("./")) visit(join(src, spec.replace(/\.js$/, ".ts")));
      }
    };
    visit(join(src, "index.ts"));
    expect(seen.has(join(src, "node.ts"))).toBe(false);
    expect(seen.has(join(src, "files.ts"))).toBe(false);
    expect(seen.size).toBeGreaterThan(5);
    expect(offending).toEqual([]);
  });
});
