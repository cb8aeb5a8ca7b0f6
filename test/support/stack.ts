// The whole distributed stack as real processes: a fresh Postgres database, a Redis key prefix,
// the API and N gateway nodes (built `dist/main.js` entry points), all on 127.0.0.1.
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { Redis } from "ioredis";
import { AdminClient } from "./admin-client.js";
import { freePort, ManagedProcess, repoRoot, waitForHttpOk } from "./processes.js";

export const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/** A fresh migrated Postgres database from `@gatehouse/db/testing`. */
export async function createDatabase(): Promise<TestDatabase> {
  const testing = (await import("@gatehouse/db/testing")) as { createTestDatabase(): Promise<TestDatabase> };
  return testing.createTestDatabase();
}

/** Deletes every Redis key under `prefix`. */
export async function cleanRedisPrefix(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 500);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}

function requireBuilt(entry: string): string {
  const path = resolve(repoRoot, entry);
  if (!existsSync(path)) {
    throw new Error(
      `${entry} is missing: the e2e tests run built code; run \`npm run build\` first (npm test does).`,
    );
  }
  return path;
}

export interface StartedService {
  proc: ManagedProcess;
  port: number;
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** Gateways: `http://127.0.0.1:<GATEWAY_METRICS_PORT>` (/metrics is not on `url`). */
  metricsUrl?: string;
}

/**
 * `node apps/api/dist/main.js` with `env` (API_PORT picked when absent, API_HOST 127.0.0.1),
 * resolved once `/readyz` answers 200.
 */
export async function startApi(env: Record<string, string>, name = "api"): Promise<StartedService> {
  const port = Number(env.API_PORT ?? (await freePort()));
  const proc = new ManagedProcess(name, process.execPath, [requireBuilt("apps/api/dist/main.js")], {
    env: { API_HOST: "127.0.0.1", ...env, API_PORT: String(port) },
  });
  const url = `http://127.0.0.1:${port}`;
  await waitForHttpOk(proc, `${url}/readyz`, 60_000);
  return { proc, port, url };
}

/**
 * `node apps/gateway/dist/main.js` with `env` (GATEWAY_PORT and GATEWAY_METRICS_PORT picked when
 * absent, GATEWAY_HOST 127.0.0.1), resolved once `/readyz` answers 200.
 */
export async function startGateway(env: Record<string, string>, name = "gateway"): Promise<StartedService> {
  const port = Number(env.GATEWAY_PORT ?? (await freePort()));
  const metricsPort = Number(env.GATEWAY_METRICS_PORT ?? (await freePort()));
  const proc = new ManagedProcess(name, process.execPath, [requireBuilt("apps/gateway/dist/main.js")], {
    env: {
      GATEWAY_HOST: "127.0.0.1",
      ...env,
      GATEWAY_PORT: String(port),
      GATEWAY_METRICS_PORT: String(metricsPort),
    },
  });
  const url = `http://127.0.0.1:${port}`;
  await waitForHttpOk(proc, `${url}/readyz`, 60_000);
  return { proc, port, url, metricsUrl: `http://127.0.0.1:${metricsPort}` };
}

export interface GatewayNode {
  index: number;
  nodeId: string;
  port: number;
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** `http://127.0.0.1:<metrics port>`: /metrics (not served on `url`). */
  metricsUrl: string;
  proc: ManagedProcess;
  env: Record<string, string>;
}

export interface StackOptions {
  /** How many gateway nodes (default 2). */
  gateways?: number;
  /** Extra environment for every gateway node. */
  gatewayEnv?: Record<string, string>;
  /** Extra environment per node index. */
  perGatewayEnv?: Array<Record<string, string>>;
  /** A Redis of the test's own (fault tests stop it); default the machine's (`TEST_REDIS_URL`). */
  redisUrl?: string;
  /** A database the caller made (and drops), e.g. on a Postgres it stops; default a fresh one here. */
  database?: TestDatabase;
}

export class Stack {
  readonly runId = randomBytes(4).toString("hex");
  readonly redisPrefix = `gatehouse:test:${this.runId}:`;
  readonly adminToken = `adm_${randomBytes(24).toString("hex")}`;
  readonly secretsKey = randomBytes(32).toString("hex");
  db!: TestDatabase;
  api!: StartedService;
  admin!: AdminClient;
  readonly gateways: GatewayNode[] = [];
  /** What agents are told: the first node's URL (as if behind a load balancer). */
  publicGatewayUrl = "";
  private readonly gatewayPorts: number[] = [];
  private readonly metricsPorts: number[] = [];

  private constructor(private readonly opts: StackOptions) {}

  /** The Redis every process of this stack uses. */
  get redisUrl(): string {
    return this.opts.redisUrl ?? REDIS_URL;
  }

  static async start(opts: StackOptions = {}): Promise<Stack> {
    const stack = new Stack(opts);
    try {
      await stack.boot();
    } catch (err) {
      const logs = stack.logs();
      await stack.stop();
      throw new Error(`${(err as Error).message}\n--- process logs ---\n${logs}`);
    }
    return stack;
  }

  private async boot(): Promise<void> {
    // Fail before creating a database when the build is missing.
    requireBuilt("apps/api/dist/main.js");
    requireBuilt("apps/gateway/dist/main.js");
    this.db = this.opts.database ?? (await createDatabase());
    const n = this.opts.gateways ?? 2;
    for (let i = 0; i < n; i++) {
      this.gatewayPorts.push(await freePort());
      this.metricsPorts.push(await freePort());
    }
    this.publicGatewayUrl = `http://127.0.0.1:${this.gatewayPorts[0]}`;

    const apiEnv = {
      DATABASE_URL: this.db.url,
      REDIS_URL: this.redisUrl,
      REDIS_KEY_PREFIX: this.redisPrefix,
      ADMIN_TOKEN: this.adminToken,
      SECRETS_KEY: this.secretsKey,
      PUBLIC_GATEWAY_URL: this.publicGatewayUrl,
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "warn",
      NODE_ENV: "test",
    };
    const [api] = await Promise.all([
      startApi(apiEnv),
      ...Array.from({ length: n }, (_, i) => this.startGateway(i)),
    ]);
    this.api = api;
    this.admin = new AdminClient(api.url, this.adminToken);
  }

  /** The environment gateway node `index` runs with. */
  gatewayEnv(index: number, extra: Record<string, string> = {}): Record<string, string> {
    return {
      GATEWAY_PORT: String(this.gatewayPorts[index]),
      GATEWAY_METRICS_PORT: String(this.metricsPorts[index]),
      GATEWAY_HOST: "127.0.0.1",
      DATABASE_URL: this.db.url,
      REDIS_URL: this.redisUrl,
      REDIS_KEY_PREFIX: this.redisPrefix,
      SECRETS_KEY: this.secretsKey,
      PUBLIC_GATEWAY_URL: this.publicGatewayUrl,
      GATEWAY_NODE_ID: `test-${this.runId}-${index}`,
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "warn",
      NODE_ENV: "test",
      // A loaded 2-core CI machine can take seconds to spawn a stdio upstream; the default 3 s
      // would make that flaky. Dead upstreams still fail fast (connection refused).
      GATEWAY_UPSTREAM_CONNECT_TIMEOUT_MS: "15000",
      ...this.opts.gatewayEnv,
      ...this.opts.perGatewayEnv?.[index],
      ...extra,
    };
  }

  /** Starts (or restarts, on its old port) gateway node `index` and waits for `/readyz`. */
  async startGateway(index: number, extraEnv: Record<string, string> = {}): Promise<GatewayNode> {
    if (index >= this.gatewayPorts.length) this.gatewayPorts[index] = await freePort();
    if (index >= this.metricsPorts.length || this.metricsPorts[index] === undefined)
      this.metricsPorts[index] = await freePort();
    const previous = this.gateways[index];
    if (previous?.proc.running) await previous.proc.kill();
    const env = this.gatewayEnv(index, extraEnv);
    const started = startGateway(env, `gateway-${index}`);
    // Registered before it is ready so that stop() knows the slot; a start failure carries the logs.
    const node: GatewayNode = {
      index,
      nodeId: env.GATEWAY_NODE_ID ?? "",
      port: Number(env.GATEWAY_PORT),
      url: `http://127.0.0.1:${env.GATEWAY_PORT}`,
      metricsUrl: `http://127.0.0.1:${env.GATEWAY_METRICS_PORT}`,
      proc: undefined as unknown as ManagedProcess,
      env,
    };
    this.gateways[index] = node;
    node.proc = (await started).proc;
    return node;
  }

  /** `http://127.0.0.1:<node port>/t/<tenant>/mcp[/<upstream>]` */
  mcpUrl(tenant: string, upstream?: string, node = 0): string {
    const gw = this.gateways[node];
    if (!gw) throw new Error(`no gateway node ${node}`);
    return `${gw.url}/t/${tenant}/mcp${upstream ? `/${upstream}` : ""}`;
  }

  /** Everything the processes printed, for a failing test. */
  logs(): string {
    const parts: string[] = [];
    if (this.api) parts.push(`=== api ===\n${this.api.proc.tail(8000)}`);
    for (const g of this.gateways)
      if (g?.proc) parts.push(`=== gateway-${g.index} ===\n${g.proc.tail(8000)}`);
    return parts.join("\n");
  }

  async stop(): Promise<void> {
    const procs = [this.api?.proc, ...this.gateways.map((g) => g?.proc)].filter(
      (p): p is ManagedProcess => p !== undefined,
    );
    await Promise.all(procs.map((p) => p.kill("SIGTERM", 3000)));
    if (!this.opts.redisUrl) await cleanRedisPrefix(this.redisPrefix).catch(() => {});
    if (!this.opts.database) await this.db?.drop().catch(() => {});
  }
}
