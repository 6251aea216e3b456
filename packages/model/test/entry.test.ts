import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const SRC = join(dirname(fileURLToPath(import.meta.url)), "..", "src");

/** Every module specifier imported (statically or dynamically) by `file`. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const out: string[] = [];
  for (const m of text.matchAll(/(?:import|export)\s[^;]*?from\s+"([^"]+)"|import\(\s*"([^"]+)"\s*\)|require\(\s*"([^"]+)"\s*\)/g)) {
    out.push(m[1] ?? m[2] ?? m[3]);
  }
  return out;
}

/** Walks the relative-import graph from `entry`; returns files and external specifiers. */
function graph(entry: string): { files: Set<string>; external: Set<string> } {
  const files = new Set<string>();
  const external = new Set<string>();
  const stack = [entry];
  while (stack.length > 0) {
    const f = stack.pop()!;
    if (files.has(f)) continue;
    files.add(f);
    for (const spec of importsOf(f)) {
      if (spec.startsWith(".")) stack.push(resolve(dirname(f), spec.replace(/\.js$/, ".ts")));
      else external.add(spec);
    }
  }
  return { files, external };
}

describe("entry points", () => {
  it("the core entry reaches no Node-only module (browser-safe)", () => {
    const { files, external } = graph(join(SRC, "index.ts"));
    // @midtrain/common is browser-safe itself (its own test walks its graph).
    expect([...external].sort()).toEqual(["@midtrain/common", "@tensorflow/tfjs-core"]);
    expect([...files].some((f) => f.endsWith("node.ts"))).toBe(false);
    expect(files.size).toBeGreaterThan(5);
  });

  it("the node entry is where file I/O lives", () => {
    const { external } = graph(join(SRC, "node.ts"));
    expect([...external].filter((s) => s.startsWith("node:")).sort()).toEqual(["node:crypto", "node:fs", "node:path"]);
  });
});
