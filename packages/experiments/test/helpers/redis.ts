/**
 * A redis-server of a test's own: on a free loopback port, with its files (the append-only file)
 * in a temporary folder, so it can be killed and started again with what it had written.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

export interface TestRedis {
  port: number;
  url: string;
  dir: string;
  /** Kills the server with `sig` and waits for it to be gone. */
  kill(sig?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port and folder (it reloads its append-only file). */
  restart(): Promise<void>;
  /** Stops it and removes its folder. */
  stop(): Promise<void>;
}

/** Starts redis-server (persistence: an append-only file synced on every write, no snapshots). */
export async function startRedis(): Promise<TestRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "midtrain-redis-"));
  let child: ChildProcess | undefined;
  const launch = async () => {
    const c = spawn(
      "redis-server",
      [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        dir,
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--save",
        "",
        "--maxmemory-policy",
        "noeviction",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    child = c;
    let out = "";
    await new Promise<void>((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`redis-server did not start on port ${port}:\n${out}`)), 15_000);
      const onData = (d: Buffer) => {
        out += d;
        if (/Ready to accept connections/.test(out)) {
          clearTimeout(timer);
          res();
        }
      };
      c.stdout!.on("data", onData);
      c.stderr!.on("data", onData);
      c.once("error", (e) => {
        clearTimeout(timer);
        rej(new Error(`cannot start redis-server (${e.message}); install it (apt-get install redis-server), as .ci/run does`));
      });
      c.once("exit", (code) => {
        clearTimeout(timer);
        rej(new Error(`redis-server exited with ${code}:\n${out}`));
      });
    });
  };
  const kill = async (sig: NodeJS.Signals = "SIGTERM") => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((res) => {
      c.once("exit", () => res());
      c.kill(sig);
    });
  };
  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    kill,
    restart: launch,
    async stop() {
      await kill("SIGTERM");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
