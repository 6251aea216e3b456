/**
 * Finding and compiling the addon (internal): the compiled file is named after a hash of the C
 * source, the compiler flags and the platform, and is looked for in the package's build/ folder,
 * then in the user's cache folder, and compiled into the first writable one when missing.
 */
import { createHash, randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { accessSync, constants, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { threadId } from "node:worker_threads";
import { fileURLToPath } from "node:url";
import { COMPILER_HINT, NativeBlasUnavailableError } from "./errors.js";

export interface LoadOptions {
  /** Environment to read MIDTRAIN_BLAS_LIB / MIDTRAIN_NATIVE_BLAS_DIR / CC from (default process.env). */
  env?: Record<string, string | undefined>;
  /** BLAS library to open (path or soname). Default: MIDTRAIN_BLAS_LIB, else libopenblas.so.0 and friends. */
  library?: string;
  /** Compile the addon when no built copy exists (default true). */
  build?: boolean;
  /** Where a compiled addon is looked for and written. Default: MIDTRAIN_NATIVE_BLAS_DIR, the package's build/ folder, then ~/.cache/midtrain. */
  cacheDir?: string;
  /** C compiler (default: CC, else cc, gcc, clang). */
  compiler?: string;
  /** Threads for the BLAS library (default: leave the library's own default). */
  threads?: number;
}

/** The package's folder (holding native/ and build/). */
export function packageRoot(): string {
  // src/*.ts in the workspace, dist/index.{js,cjs} when installed: the root is one level up.
  const here = typeof __dirname === "string" ? __dirname : dirname(fileURLToPath(import.meta.url));
  return resolve(here, "..");
}

const SOURCE_NAME = "native/midtrain_blas.c";

/** Compiler flags after the source and output (platform-specific linking). */
function compileFlags(include: string, src: string, out: string): string[] {
  // -fno-trapping-math / -fno-math-errno let the element-wise loops vectorize (no FP traps or errno
  // to preserve); they do not change any IEEE result.
  const flags = ["-O3", "-fno-trapping-math", "-fno-math-errno", "-shared", "-fPIC", "-I", include, src, "-o", out];
  if (process.platform === "darwin") flags.push("-undefined", "dynamic_lookup");
  else flags.push("-ldl");
  flags.push("-lm");
  return flags;
}

/** The addon's file name: it changes with the C source, the compiler flags, the platform and the architecture. */
export function addonFileName(root = packageRoot()): string {
  const src = readFileSync(join(root, SOURCE_NAME));
  const h = createHash("sha256")
    .update(src)
    .update(compileFlags("", "", "").join(" "))
    .update(`${process.platform}-${process.arch}`)
    .digest("hex");
  return `midtrain_blas-${h.slice(0, 12)}.node`;
}

function cacheDirs(opts: LoadOptions, root: string): string[] {
  const env = opts.env ?? process.env;
  if (opts.cacheDir) return [opts.cacheDir];
  if (env.MIDTRAIN_NATIVE_BLAS_DIR) return [env.MIDTRAIN_NATIVE_BLAS_DIR];
  const home = env.XDG_CACHE_HOME || join(env.HOME || homedir(), ".cache");
  return [join(root, "build"), join(home, "midtrain", "native-blas")];
}

function writable(dir: string): boolean {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

function nodeApiInclude(): string {
  const require = createRequire(join(packageRoot(), "package.json"));
  try {
    const dir = (require("node-api-headers") as { include_dir: string }).include_dir;
    if (existsSync(join(dir, "node_api.h"))) return dir;
  } catch {
    // fall through to Node's own headers
  }
  const own = resolve(process.execPath, "../../include/node");
  if (existsSync(join(own, "node_api.h"))) return own;
  throw new NativeBlasUnavailableError("Node-API headers not found (the node-api-headers package is missing and Node ships no include/node)", "build");
}

/**
 * Compiles the addon into `dir` (written to a temporary name, then renamed, so a failed or
 * concurrent build never leaves a partial file behind). Returns the addon's path.
 */
export function buildAddon(dir: string, opts: Pick<LoadOptions, "compiler" | "env"> = {}): string {
  const env = opts.env ?? process.env;
  const root = packageRoot();
  const out = join(dir, addonFileName(root));
  mkdirSync(dir, { recursive: true });
  // Unique per process and thread (worker_threads may build at the same time).
  const tmp = `${out}.${process.pid}.${threadId}.${randomBytes(4).toString("hex")}.tmp`;
  const include = nodeApiInclude();
  const compilers = opts.compiler ? [opts.compiler] : env.CC ? [env.CC] : ["cc", "gcc", "clang"];
  const flags = compileFlags(include, join(root, SOURCE_NAME), tmp);
  const failures: string[] = [];
  for (const cc of compilers) {
    try {
      execFileSync(cc, flags, { stdio: "pipe" });
      renameSync(tmp, out);
      return out;
    } catch (err) {
      rmSync(tmp, { force: true });
      const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
      const text = e.stderr?.length ? String(e.stderr) : String(e.message);
      failures.push(e.code === "ENOENT" ? `${cc}: not found` : `${cc}: ${text.trim().split("\n").slice(0, 3).join(" ")}`);
    }
  }
  throw new NativeBlasUnavailableError(`the native BLAS addon could not be compiled (${failures.join("; ")}); ${COMPILER_HINT}`, "build");
}

/** Finds the compiled addon, compiling it when allowed. */
export function addonPath(opts: LoadOptions = {}): string {
  const root = packageRoot();
  const name = addonFileName(root);
  const dirs = cacheDirs(opts, root);
  for (const d of dirs) if (existsSync(join(d, name))) return join(d, name);
  if (opts.build === false) {
    throw new NativeBlasUnavailableError(`the native BLAS addon is not built (looked in ${dirs.join(", ")}); load with build: true`, "build");
  }
  const target = dirs.find(writable);
  if (!target)
    throw new NativeBlasUnavailableError(`no writable folder for the native BLAS addon (tried ${dirs.join(", ")}); set MIDTRAIN_NATIVE_BLAS_DIR`, "build");
  return buildAddon(target, opts);
}
