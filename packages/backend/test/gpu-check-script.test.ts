import { spawnSync } from "node:child_process";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";

// scripts/gpu-check.sh needs an NVIDIA GPU to run for real; its argument handling and the
// commands it would run are checked here through --dry-run.
const script = resolve(import.meta.dirname, "../../../scripts/gpu-check.sh");
const run = (...args: string[]) => spawnSync("bash", [script, ...args], { encoding: "utf8", env: { ...process.env, PATH: process.env.PATH } });

describe("scripts/gpu-check.sh", () => {
  it("--dry-run prints the backend tests, the matmul bench and the paper-shape step with MFU against the given fp32 peak", () => {
    const r = run("--dry-run", "--peak-tflops", "67", "--steps", "3");
    expect(r.status).toBe(0);
    const cmds = r.stdout.split("\n").filter((l) => l.startsWith("+ "));
    expect(cmds[0]).toBe("+ pnpm exec vitest run --project backend");
    expect(cmds[1]).toMatch(/^\+ node scripts\/matmul-bench\.mjs (cuda )?webgpu wasm$/);
    expect(cmds[2]).toMatch(
      /^\+ node scripts\/bench\.mjs --configs p70,p160 --backends (cuda,)?webgpu --steps 3 --warmup 1 --out bench\/results\/gpu-check\.json --peak-tflops 67$/,
    );
    const skip = run("--dry-run", "--skip-tests", "--configs", "p70");
    expect(skip.stdout.split("\n").filter((l) => l.startsWith("+ "))).toEqual([
      expect.stringMatching(/^\+ node scripts\/bench\.mjs --configs p70 --backends (cuda,)?webgpu --steps 5 --warmup 1 --out bench\/results\/gpu-check\.json$/),
    ]);
  });

  it("refuses bad arguments with exit code 2 and says what is wrong", () => {
    for (const [args, msg] of [
      [["--peak-tflops", "lots"], /--peak-tflops must be a number/],
      [["--peak-tflops"], /--peak-tflops needs a number/],
      [["--configs", "p999"], /unknown bench config 'p999'/],
      [["--steps", "0"], /--steps must be a positive integer/],
      [["--bogus"], /unknown argument '--bogus'/],
    ] as const) {
      const r = run("--dry-run", ...args);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(msg);
    }
  });
});
