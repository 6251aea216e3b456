import { describe, expect, it } from "vitest";
import { LIBRARY_HINT } from "../src/errors.js";
import { loadNativeBlas, NativeBlasUnavailableError, tryLoadNativeBlas } from "../src/index.js";

// Its own file (own process): the BLAS library is opened once per process.
const required = process.env.CI === "true" || process.env.CI === "1" || process.env.MIDTRAIN_NATIVE_BLAS === "1";
// Elsewhere, where the addon itself cannot be built, the suite is skipped with why in its title.
const reason = tryLoadNativeBlas({ library: "/nonexistent/libblas.so" }).reason ?? "";
const cannotBuild = required || reason.includes("no BLAS library") ? undefined : `the addon cannot be built here: ${reason}`;
const title = "a BLAS library that cannot be opened";

describe.skipIf(cannotBuild !== undefined)(cannotBuild === undefined ? title : `${title} [skipped: ${cannotBuild}]`, () => {
  it("a library without cblas_sgemm is refused", () => {
    // Runs first (nothing opened yet). libm is a shared library that has no CBLAS symbols; opening it must not be taken as a BLAS.
    const r = tryLoadNativeBlas({ library: "libm.so.6" });
    expect(r.reason).toMatch(/libm\.so\.6 has no cblas_sgemm symbol/);
  });

  it("is an error that says what to install, and a later load of a real library still works", () => {
    let err: unknown;
    try {
      loadNativeBlas({ library: "/nonexistent/libblas.so" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NativeBlasUnavailableError);
    expect((err as NativeBlasUnavailableError).stage).toBe("library");
    expect((err as Error).message).toContain("/nonexistent/libblas.so");
    expect((err as Error).message).toContain(LIBRARY_HINT);
    const env = { ...process.env, MIDTRAIN_BLAS_LIB: "" };
    expect(loadNativeBlas({ env }).library).toMatch(/blas/i);
  });
});
