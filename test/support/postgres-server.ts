// A Postgres cluster of the test's own (initdb on a temp dir, pg_ctl on a free port), so a fault test
// can stop and restart it; the machine's Postgres on 5432 is never touched.
import { execFile } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort } from "./processes.js";

const run = promisify(execFile);

function pgBin(name: string): string {
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) {
    const p = join(root, v, "bin", name);
    if (existsSync(p)) return p;
  }
  throw new Error(`no ${name} under ${root}/*/bin: install the postgresql server package`);
}

/** initdb and postgres refuse to run as root: run them as the `postgres` user then. */
function asPgUser(cmd: string, args: string[]): [string, string[]] {
  return userInfo().uid === 0 ? ["runuser", ["-u", "postgres", "--", cmd, ...args]] : [cmd, args];
}

export class PostgresServer {
  private readonly dir: string;

  private constructor(readonly port: number) {
    this.dir = mkdtempSync(join(tmpdir(), "gatehouse-pg-"));
  }

  private get data(): string {
    return join(this.dir, "data");
  }

  /** `postgres://postgres@127.0.0.1:<port>/<db>` */
  url(db = "postgres"): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${db}`;
  }

  /** initdb + start on a free port (trust auth, loopback only, no fsync: a test cluster). */
  static async start(): Promise<PostgresServer> {
    const server = new PostgresServer(await freePort());
    if (userInfo().uid === 0) {
      // runuser needs the numeric ids of `postgres` to own the directory.
      const { stdout } = await run("id", ["-u", "postgres"]);
      const { stdout: gid } = await run("id", ["-g", "postgres"]);
      chownSync(server.dir, Number(stdout.trim()), Number(gid.trim()));
    }
    const [cmd, args] = asPgUser(pgBin("initdb"), [
      "-D",
      server.data,
      "-U",
      "postgres",
      "--auth=trust",
      "-E",
      "UTF8",
      "--no-sync",
    ]);
    await run(cmd, args);
    await server.startServer();
    return server;
  }

  /** Starts the (stopped) cluster again on the same port and waits until it accepts connections. */
  async startServer(): Promise<void> {
    const opts = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`;
    const [cmd, args] = asPgUser(pgBin("pg_ctl"), [
      "-D",
      this.data,
      "-o",
      opts,
      "-l",
      join(this.dir, "log"),
      "-w",
      "-t",
      "60",
      "start",
    ]);
    await run(cmd, args);
  }

  /** Stops it: `fast` (clients disconnected, clean) or `immediate` (a crash, recovery on start). */
  async stop(mode: "fast" | "immediate" = "fast"): Promise<void> {
    const [cmd, args] = asPgUser(pgBin("pg_ctl"), ["-D", this.data, "-m", mode, "-w", "stop"]);
    await run(cmd, args);
  }

  async restart(mode: "fast" | "immediate" = "fast"): Promise<void> {
    await this.stop(mode);
    await this.startServer();
  }

  /** A new database on this cluster, migrations applied. */
  async createDatabase(name: string): Promise<{ url: string; drop(): Promise<void> }> {
    await run(pgBin("createdb"), ["-h", "127.0.0.1", "-p", String(this.port), "-U", "postgres", name]);
    const url = this.url(name);
    const { applyMigrations } = await import("@gatehouse/db");
    await applyMigrations(url);
    return { url, drop: async () => {} };
  }

  async close(): Promise<void> {
    await this.stop("immediate").catch(() => {});
    rmSync(this.dir, { recursive: true, force: true });
  }
}
