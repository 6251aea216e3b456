import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";

// Every package builds on this one, browser bundles included: it may import only its own files.
describe("no dependencies", () => {
  it("src/ imports nothing but its own modules", () => {
    const src = resolve(import.meta.dirname, "../src");
    const files = readdirSync(src).filter((f) => f.endsWith(".ts"));
    const specs = files.flatMap((f) =>
      [...readFileSync(join(src, f), "utf8").matchAll(/(?:import|export)[^;]*?from\s+"([^"]+)"|import\(\s*"([^"]+)"\s*\)/g)].map((m) => m[1] ?? m[2]),
    );
    expect(files.length).toBeGreaterThanOrEqual(4);
    expect(specs.length).toBeGreaterThan(0);
    expect(specs.filter((s) => !s.startsWith("./"))).toEqual([]);
  });
});
