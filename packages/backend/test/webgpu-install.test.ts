import { describe, expect, it } from "vitest";
import { BackendUnavailableError, initBackend } from "../src/index.js";

// `webgpu` (Dawn for Node) is an optional peer dependency: a plain install has no WebGPU in Node,
// and asking for it must say the one command that adds it.
describe("webgpu in Node without the optional 'webgpu' package", () => {
  it("says to install webgpu, with the command", async () => {
    const notInstalled = async (name: string) => {
      const err = new Error(`Cannot find package '${name}' imported from /app/node_modules/@midtrain/backend/dist/index.js`);
      Object.assign(err, { code: "ERR_MODULE_NOT_FOUND" });
      throw err;
    };
    const err = await initBackend({ prefer: "webgpu", loadModule: notInstalled, env: {} }).catch((e) => e);
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect(err.message).toMatch(/is not installed: install webgpu with `npm install webgpu@\^0\.6\.2`/);
  });

  it("an installed package that fails to load gives the loader's reason instead", async () => {
    const broken = async () => {
      throw new Error("libEGL.so.1: cannot open shared object file");
    };
    const err = await initBackend({ prefer: "webgpu", loadModule: broken, env: {} }).catch((e) => e);
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect(err.message).toMatch(/failed to load: libEGL\.so\.1/);
    expect(err.message).not.toMatch(/not installed/);
  });
});
