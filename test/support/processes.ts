// Real child processes for the e2e tests: spawn, wait for readiness, collect output, kill.
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (test/support/../..). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const fixturesDir = resolve(repoRoot, "test/fixtures");

const MAX_LOG_CHARS = 200_000;
const live = new Set<ManagedProcess>();

export interface SpawnOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Keep the parent's environment (default true). */
  inheritEnv?: boolean;
  /**
   * Run in a process group of its own and signal the whole group: for commands that start others
   * (`bash -c "npm run …"`), whose grandchildren a signal to the shell alone would leave running.
   */
  group?: boolean;
}

/** A child process whose stdout/stderr are kept (bounded) for printing when a test fails. */
export class ManagedProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private log = "";
  private lineWaiters: Array<{ re: RegExp; resolve: (m: RegExpMatchArray) => void }> = [];
  private stdoutBuf = "";
  exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly group: boolean;

  constructor(
    readonly name: string,
    readonly command: string,
    readonly args: string[],
    opts: SpawnOptions = {},
  ) {
    const env: Record<string, string> = {};
    if (opts.inheritEnv !== false) {
      for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
    }
    for (const [k, v] of Object.entries(opts.env ?? {})) {
      if (v === undefined) delete env[k];
      else env[k] = v;
    }
    this.group = opts.group === true;
    this.child = spawn(command, args, {
      cwd: opts.cwd ?? repoRoot,
      env,
      stdio: ["pipe", "pipe", "pipe"],
      detached: this.group,
    });
    live.add(this);
    this.child.stdout?.setEncoding("utf8");
    this.child.stderr?.setEncoding("utf8");
    this.child.stdout?.on("data", (chunk: string) => {
      this.append(chunk);
      this.stdoutBuf += chunk;
      const lines = this.stdoutBuf.split("\n");
      this.stdoutBuf = lines.pop() ?? "";
      for (const line of lines) this.checkLine(line);
    });
    this.child.stderr?.on("data", (chunk: string) => this.append(chunk));
    this.exited = new Promise((resolveExit) => {
      this.child.once("exit", (code, signal) => {
        this.exitInfo = { code, signal };
        live.delete(this);
        this.append(`\n[${this.name} exited: code=${code} signal=${signal}]\n`);
        resolveExit({ code, signal });
      });
      this.child.once("error", (err) => {
        this.append(`\n[${this.name} failed to spawn: ${err.message}]\n`);
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  output(): string {
    return this.log;
  }

  private append(chunk: string): void {
    this.log += chunk;
    if (this.log.length > MAX_LOG_CHARS) this.log = this.log.slice(-MAX_LOG_CHARS);
  }

  private checkLine(line: string): void {
    for (const w of [...this.lineWaiters]) {
      const m = line.match(w.re);
      if (m) {
        this.lineWaiters.splice(this.lineWaiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  }

  /** Resolves with the first stdout line (from now on) matching `re`; rejects on exit or timeout. */
  waitForLine(re: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
    return new Promise((resolveLine, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`${this.name}: no line matching ${re} within ${timeoutMs} ms\n${this.tail()}`));
      }, timeoutMs);
      const waiter = {
        re,
        resolve: (m: RegExpMatchArray) => {
          clearTimeout(timer);
          resolveLine(m);
        },
      };
      this.lineWaiters.push(waiter);
      void this.exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(
          new Error(`${this.name} exited (code=${code}, signal=${signal}) before ready\n${this.tail()}`),
        );
      });
    });
  }

  tail(chars = 6000): string {
    return this.log.length > chars ? `…${this.log.slice(-chars)}` : this.log;
  }

  /** Sends `signal` and waits for the exit (SIGKILL after `graceMs` if it lingers). */
  async kill(signal: NodeJS.Signals = "SIGTERM", graceMs = 5000): Promise<void> {
    if (!this.running) {
      // The leader is gone, but in a group its children may not be.
      if (this.group) this.signal("SIGKILL");
      return;
    }
    this.signal(signal);
    if (signal === "SIGKILL") {
      await this.exited;
      return;
    }
    const timer = setTimeout(() => {
      if (this.running) this.signal("SIGKILL");
    }, graceMs);
    await this.exited;
    clearTimeout(timer);
    if (this.group) this.signal("SIGKILL");
  }

  /** Signals the process, or its whole group when started with `group`. */
  signal(signal: NodeJS.Signals): void {
    const pid = this.child.pid;
    if (this.group && pid !== undefined) {
      try {
        process.kill(-pid, signal);
      } catch {
        // the group is already empty
      }
      return;
    }
    this.child.kill(signal);
  }
}

/** Every process started by this test file that is still running. */
export function liveProcesses(): ManagedProcess[] {
  return [...live];
}

/** Kill every process this file started (used in afterAll and on exit). */
export async function killAll(): Promise<void> {
  await Promise.all([...live].map((p) => p.kill("SIGTERM", 3000)));
}

process.once("exit", () => {
  for (const p of live) p.signal("SIGKILL");
});

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const address = srv.address();
      const port = typeof address === "object" && address ? address.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value (returned) or the time is up (throws, naming `what`). */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  { timeoutMs = 20_000, intervalMs = 100 } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const why = lastError instanceof Error ? `: ${lastError.message}` : "";
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await sleep(intervalMs);
  }
}

/** Waits until `url` answers 200, or the process exits. */
export async function waitForHttpOk(proc: ManagedProcess, url: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    if (!proc.running) throw new Error(`${proc.name} exited before ${url} was ready\n${proc.tail()}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return;
      last = `HTTP ${res.status} ${await res.text()}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(150);
  }
  throw new Error(`${proc.name}: ${url} not ready within ${timeoutMs} ms (last: ${last})\n${proc.tail()}`);
}

export interface Fixture {
  proc: ManagedProcess;
  port: number;
  /** `http://127.0.0.1:<port>/mcp` */
  url: string;
}

/**
 * Start one of the fixture servers in test/fixtures (`file` relative to it) with plain `node`;
 * resolves when it printed `LISTENING <port>`.
 */
export async function startFixture(
  file: string,
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<Fixture> {
  const path = resolve(fixturesDir, file);
  const proc = new ManagedProcess(
    `fixture:${file}${args.length ? ` ${args.join(" ")}` : ""}`,
    process.execPath,
    [path, ...args],
    {
      env,
    },
  );
  const m = await proc.waitForLine(/^LISTENING (\d+)/);
  const port = Number(m[1]);
  return { proc, port, url: `http://127.0.0.1:${port}/mcp` };
}

/** The `node` + args to run a fixture as a stdio upstream. */
export function stdioFixtureCommand(file: string, args: string[] = []): { command: string; args: string[] } {
  return { command: process.execPath, args: [resolve(fixturesDir, file), ...args] };
}
