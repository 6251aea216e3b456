/** Errors of @midtrain/native-blas, with what to install when the native path is unavailable. */

/** Why the native path cannot be used here, with what to do about it. */
export class NativeBlasUnavailableError extends Error {
  override name = "NativeBlasUnavailableError";
  constructor(
    message: string,
    /** `build`: no addon and it could not be compiled; `library`: no usable BLAS library. */
    readonly stage: "build" | "library",
  ) {
    super(message);
  }
}

export const LIBRARY_HINT =
  "install OpenBLAS (Debian/Ubuntu: apt-get install libopenblas0-pthread; macOS: brew install openblas) or set MIDTRAIN_BLAS_LIB to a CBLAS library";
export const COMPILER_HINT = "install a C compiler (Debian/Ubuntu: apt-get install gcc; macOS: xcode-select --install) or set CC";
