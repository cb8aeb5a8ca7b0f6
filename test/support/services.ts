// Which of the test run's shared services answer: Postgres (TEST_DATABASE_ADMIN_URL) and Redis
// (TEST_REDIS_URL). Used by the vitest configs (which test files to skip without Redis) and by
// the global setup (start an embedded Postgres when none answers). Node built-ins and `pg` only:
// vitest loads this file while reading its configuration.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { connect } from "node:net";
import { dirname, join, relative, resolve } from "node:path";
import pg from "pg";

export const DEFAULT_DATABASE_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres";
export const DEFAULT_REDIS_URL = "redis://127.0.0.1:6379";

export function databaseAdminUrl(): string {
  return process.env.TEST_DATABASE_ADMIN_URL?.trim() || DEFAULT_DATABASE_ADMIN_URL;
}

export function redisUrl(): string {
  return process.env.TEST_REDIS_URL?.trim() || DEFAULT_REDIS_URL;
}

/** A URL without its password, for messages. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return url;
  }
}

// Errors that mean "no server there", as opposed to a server that answers and refuses us (bad
// password, missing role): only the former is a reason to start one of our own.
const UNREACHABLE = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ETIMEDOUT",
  "EAI_AGAIN",
]);

/** "up", or "absent" when nothing answers at `url`; an answering server that rejects us throws. */
export async function probePostgres(url: string, timeoutMs = 3000): Promise<"up" | "absent"> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  client.on("error", () => {});
  try {
    await client.connect();
    await client.query("SELECT 1");
    return "up";
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { errors?: NodeJS.ErrnoException[] };
    const codes = [err.code, ...(err.errors ?? []).map((x) => x.code)];
    if (codes.some((c) => c && UNREACHABLE.has(c)) || /timeout/i.test(err.message)) return "absent";
    throw new Error(`Postgres at ${displayUrl(url)} answers but refuses the tests: ${err.message}`);
  } finally {
    await client.end().catch(() => {});
  }
}

/** True when a Redis server answers PING (or asks for a password) at `url` within `timeoutMs`. */
export function probeRedis(url: string, timeoutMs = 1500): Promise<boolean> {
  let host = "127.0.0.1";
  let port = 6379;
  try {
    const u = new URL(url);
    host = u.hostname || host;
    port = Number(u.port) || port;
  } catch {
    return Promise.resolve(false);
  }
  return new Promise((done) => {
    const socket = connect({ host, port });
    const finish = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      done(ok);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.once("data", (d) => finish(/^(\+PONG|-NOAUTH|-ERR)/.test(d.toString("latin1"))));
    socket.once("error", () => finish(false));
  });
}

/** One probe per process: every project's config asks. */
let redisAnswer: Promise<boolean> | undefined;
export function redisAvailable(): Promise<boolean> {
  redisAnswer ??= probeRedis(redisUrl());
  return redisAnswer;
}

// A test file needs Redis when it, or a test-only module it imports (relative path, transitively),
// connects to the test Redis: reads process.env.TEST_REDIS_URL or .REDIS_URL, imports a REDIS_URL
// from a support module, opens a Redis client/bus/store itself, or uses the process stack. Application
// sources (src/ files that are not tests) do not count: they read REDIS_URL from the configuration the
// tests give them. `*.embedded.test.ts` files run the embedded mode, which has no Redis by design,
// even though they share a harness with the distributed mode.
const USES_REDIS =
  /process\.env\.(TEST_)?REDIS_URL\b|\{[^}]*\bREDIS_URL\b[^}]*\}\s*from|\bnew Redis(Bus|SessionStore)?\(|\bcreateRateLimitRedis\(|support\/stack\.js|redis-server\.js/;
const IMPORT = /(?:from\s+|import\s*\(\s*)["'](\.{1,2}\/[^"']+)["']/g;

function isTestOnly(file: string): boolean {
  return /\.test\.ts$/.test(file) || /(^|\/)test\//.test(file);
}

function needsRedis(file: string, seen: Set<string>): boolean {
  if (seen.has(file) || !existsSync(file)) return false;
  seen.add(file);
  const text = readFileSync(file, "utf8");
  if (USES_REDIS.test(text)) return true;
  for (const m of text.matchAll(IMPORT)) {
    const spec = (m[1] ?? "").replace(/\.js$/, ".ts");
    const target = resolve(dirname(file), spec);
    if (isTestOnly(target) && needsRedis(target, seen)) return true;
  }
  return false;
}

function testFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (name === "node_modules" || name === "dist" || name.startsWith(".")) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) testFiles(path, out);
    else if (name.endsWith(".test.ts")) out.push(path);
  }
  return out;
}

/** Every test file under `root` that needs Redis, as absolute paths. */
export function testFilesNeedingRedis(root: string): string[] {
  return testFiles(root).filter((f) => !f.endsWith(".embedded.test.ts") && needsRedis(f, new Set()));
}

/**
 * For a project's vitest config: the test files (relative to `projectRoot`) that need Redis when
 * no Redis answers, else none. The global setup says in one line what was skipped.
 */
export async function redisExcludes(projectRoot: string): Promise<string[]> {
  if (await redisAvailable()) return [];
  return testFilesNeedingRedis(projectRoot).map((f) => relative(projectRoot, f));
}
