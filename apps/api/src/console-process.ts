// The console (apps/web, a Next.js server) beside the embedded process: a child process, so Next's
// runtime (its patched fetch, its memory) stays out of the API and gateway. It talks to the API
// over HTTP like any browser-facing client; it dies with this process.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export interface ConsoleProcess {
  url: string;
  close(): Promise<void>;
}

const WEB_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "../../web");
const READY_TIMEOUT_MS = 60_000;

/** Where the console would be served from, or why it cannot be. */
export function consoleBuildProblem(webDir = WEB_DIR): string | null {
  if (!existsSync(join(webDir, "package.json"))) return "apps/web is not part of this install";
  if (!existsSync(join(webDir, ".next", "BUILD_ID"))) return "apps/web is not built (run `npm run build`)";
  return null;
}

/** Starts `next start` for apps/web on host:port (port 0: a free one) and waits until it serves. */
export async function startConsoleProcess(o: {
  host: string;
  port: number;
  apiUrl: string;
  env: Record<string, string | undefined>;
  log: (line: string) => void;
}): Promise<ConsoleProcess> {
  const problem = consoleBuildProblem();
  if (problem) throw new Error(problem);
  const port = o.port === 0 ? await freePort(o.host) : o.port;
  const nextBin = createRequire(join(WEB_DIR, "package.json")).resolve("next/dist/bin/next");
  const child = spawn(process.execPath, [nextBin, "start", "-p", String(port), "-H", o.host], {
    cwd: WEB_DIR,
    env: { ...o.env, API_URL: o.apiUrl, NEXT_TELEMETRY_DISABLED: "1", NODE_ENV: "production" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const shown = o.host === "0.0.0.0" || o.host === "::" ? "localhost" : o.host;
  const url = `http://${shown}:${port}`;
  try {
    await waitUntilServing(child, url, o.log);
  } catch (err) {
    await stop(child);
    throw err;
  }
  child.stdout?.on("data", (b: Buffer) => o.log(b.toString().trimEnd()));
  child.stderr?.on("data", (b: Buffer) => o.log(b.toString().trimEnd()));
  return { url, close: () => stop(child) };
}

async function waitUntilServing(
  child: ChildProcess,
  url: string,
  log: (line: string) => void,
): Promise<void> {
  let output = "";
  const collect = (b: Buffer) => {
    output += b.toString();
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  const exited = new Promise<never>((_, reject) =>
    child.once("exit", (code) =>
      reject(new Error(`the console exited (${code}): ${output.trim().slice(-500)}`)),
    ),
  );
  const deadline = Date.now() + READY_TIMEOUT_MS;
  try {
    for (;;) {
      const ok = await Promise.race([
        fetch(`${url}/sign-in`, { redirect: "manual", signal: AbortSignal.timeout(5000) }).then(
          (r) => r.status < 500,
          () => false,
        ),
        exited,
      ]);
      if (ok) return;
      if (Date.now() > deadline) throw new Error(`the console did not answer within ${READY_TIMEOUT_MS} ms`);
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    child.stdout?.off("data", collect);
    child.stderr?.off("data", collect);
    if (output.includes("Error")) log(output.trim());
  }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

function freePort(host: string): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}
