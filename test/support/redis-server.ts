// A Redis server of the test's own (never the shared one on 6379): fault tests stop it and bring it
// back empty on the same port, which the machine's Redis must never go through.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, ManagedProcess } from "./processes.js";

export class RedisServer {
  proc: ManagedProcess | null = null;
  private readonly dir = mkdtempSync(join(tmpdir(), "gatehouse-redis-"));

  private constructor(readonly port: number) {}

  /** `redis://127.0.0.1:<port>` */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.proc?.running ?? false;
  }

  /** Starts `redis-server` on a free port, with no persistence: every restart comes back empty. */
  static async start(): Promise<RedisServer> {
    const server = new RedisServer(await freePort());
    await server.boot();
    return server;
  }

  private async boot(): Promise<void> {
    this.proc = new ManagedProcess(
      `redis:${this.port}`,
      "redis-server",
      [
        "--port",
        String(this.port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        this.dir,
        "--loglevel",
        "notice",
      ],
      { cwd: this.dir },
    );
    await this.proc.waitForLine(/Ready to accept connections/, 20_000);
  }

  /** Stops the server (SIGTERM: a clean shutdown; SIGKILL: a crash). Its data is gone either way. */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    await this.proc?.kill(signal, 5000);
  }

  /** Starts it again on the same port, empty. */
  async restart(): Promise<void> {
    if (this.running) await this.stop();
    await this.boot();
  }

  async close(): Promise<void> {
    await this.stop("SIGKILL");
    rmSync(this.dir, { recursive: true, force: true });
  }
}
