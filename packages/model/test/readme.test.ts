import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { expect, it, vi } from "vitest";
import * as api from "../src/index.js";
import * as nodeApi from "../src/node.js";

it("the README example runs and prints what it claims", async () => {
  const readme = readFileSync(join(dirname(fileURLToPath(import.meta.url)), "..", "README.md"), "utf8");
  const code = /```ts\n([\s\S]*?)```/.exec(readme)![1];
  const dir = mkdtempSync(join(tmpdir(), "model-readme-"));
  const file = join(dir, "example.ts");
  writeFileSync(file, code);
  const lines: string[] = [];
  const spy = vi.spyOn(console, "log").mockImplementation((...a: unknown[]) => {
    lines.push(a.map(String).join(" "));
  });
  try {
    await import(pathToFileURL(file).href);
  } finally {
    spy.mockRestore();
    rmSync(dir, { recursive: true, force: true });
  }
  // 6 * (891,648 - 384 * 128) + 12 * 4 * 128 * 128
  expect(lines[0]).toBe("891648 parameters, 5841408 training FLOPs/token");
  const loss = Number(lines[1].split(" ")[1]);
  expect(Math.abs(loss - Math.log(384))).toBeLessThan(0.3);
  expect(lines[2]).toBe("same logits: true");
});

it("the README's API section documents every value the entries export (`@midtrain/model` and `/node`)", () => {
  const readme = readFileSync(join(dirname(fileURLToPath(import.meta.url)), "..", "README.md"), "utf8");
  const apiSection = readme.split("\n## API")[1]?.split("\n## ")[0] ?? "";
  const names = [...Object.keys(api), ...Object.keys(nodeApi)];
  expect(names).toContain("createModel");
  expect(names).toContain("saveHf");
  expect(names.filter((n) => !apiSection.includes(`\`${n}`))).toEqual([]);
});
