import { describe, expect, it } from "vitest";
import { initBackend, probeBackend, requiredBackends } from "../src/index.js";

// Its own file (own process): starting webgpu at load time changes what the automatic-mode
// tests in select.test.ts see. Required under CI; elsewhere, without Mesa's EGL/GL, the test is
// skipped with the reason in its title (scripts/test-all.mjs lists it).
const mesa = await probeBackend("webgpu", { webgpuAdapter: "opengl" });
if (!mesa.ok && requiredBackends().includes("webgpu")) throw new Error(`required backend webgpu cannot start on Mesa: ${mesa.reason}`);
const noMesa = mesa.ok ? undefined : `webgpu on Mesa cannot start here: ${mesa.reason}`;
const title = "webgpu in Node without a GPU runs on Mesa and says it is software";

describe("device info on Mesa", () => {
  it.skipIf(noMesa !== undefined)(noMesa === undefined ? title : `${title} [skipped: ${noMesa}]`, async () => {
    const r = await initBackend({ prefer: "webgpu", webgpuAdapter: "opengl" });
    expect(r.backend).toBe("webgpu");
    expect(r.device.isSoftware).toBe(true);
    expect(r.device.details?.dawnBackend).toBe("opengl");
    expect(r.device.limits?.maxComputeInvocationsPerWorkgroup).toBeGreaterThanOrEqual(256);
    expect(r.device.description).toMatch(/llvmpipe|mesa/i);
  });
});
