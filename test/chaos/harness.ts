// The whole distributed stack on parts the fault suite may break: its own Postgres cluster and Redis,
// the API, BullMQ workers and gateway nodes as processes, upstreams (one behind a misbehaving proxy).
import { randomBytes } from "node:crypto";
import { createDb, type Db } from "@gatehouse/db";
import { Redis } from "ioredis";
import { type AuthServer, startAuthServer } from "../fixtures/oauth/auth-server.mjs";
import { type ProtectedUpstream, startProtectedUpstream } from "../fixtures/oauth/protected-upstream.mjs";
import { ALLOW_ALL } from "../support/admin-client.js";
import { ChaosProxy } from "../support/chaos-proxy.js";
import { PostgresServer } from "../support/postgres-server.js";
import {
  type Fixture,
  freePort,
  ManagedProcess,
  repoRoot,
  startFixture,
  waitForHttpOk,
} from "../support/processes.js";
import { RedisServer } from "../support/redis-server.js";
import { Stack } from "../support/stack.js";
import type { CallRecord } from "./traffic.js";

export const TENANT = "chaos";

/** Gateway settings of the suite (stated in RESULTS.md). */
export const CHAOS_GATEWAY_ENV = {
  GATEWAY_UPSTREAM_TIMEOUT_MS: "10000",
  GATEWAY_CONFIG_RECHECK_MS: "10000",
};

export class ChaosStack {
  redis!: RedisServer;
  pg!: PostgresServer;
  stack!: Stack;
  db!: Db;
  alpha!: Fixture;
  beta!: Fixture;
  betaPort = 0;
  proxy!: ChaosProxy;
  key = "";
  tenantId = "";
  readonly workers: ManagedProcess[] = [];
  /** With `oauthTokenTtl`: an authorization server and the `gamma` upstream it protects (client credentials). */
  as?: AuthServer;
  gamma?: ProtectedUpstream;

  static async start(
    opts: { gateways?: number; workers?: number; oauthTokenTtl?: number } = {},
  ): Promise<ChaosStack> {
    const c = new ChaosStack();
    [c.redis, c.pg, c.alpha] = await Promise.all([
      RedisServer.start(),
      PostgresServer.start(),
      startFixture("tools-server.mjs", ["--name", "alpha"]),
    ]);
    c.betaPort = await freePort();
    c.beta = await startFixture("tools-server.mjs", ["--name", "beta", "--port", String(c.betaPort)]);
    c.proxy = await ChaosProxy.start(c.betaPort);
    const database = await c.pg.createDatabase(`chaos_${randomBytes(4).toString("hex")}`);
    c.stack = await Stack.start({
      gateways: opts.gateways ?? 2,
      redisUrl: c.redis.url,
      database,
      gatewayEnv: CHAOS_GATEWAY_ENV,
    });
    for (let i = 0; i < (opts.workers ?? 2); i++) c.workers.push(await c.startWorker(i));
    c.db = await createDb({ databaseUrl: database.url });
    const tenant = await c.stack.admin.createTenant(TENANT, { captureArguments: true });
    c.tenantId = tenant.id;
    await c.stack.admin.createUpstream(TENANT, { name: "alpha", url: c.alpha.url });
    await c.stack.admin.createUpstream(TENANT, { name: "beta", url: c.proxy.url });
    await c.stack.admin.putPolicy(TENANT, ALLOW_ALL);
    c.key = (await c.stack.admin.createKey(TENANT, { name: "agents" })).key;
    if (opts.oauthTokenTtl) {
      c.as = await startAuthServer({ accessTokenTtl: opts.oauthTokenTtl });
      c.gamma = await startProtectedUpstream({ issuer: c.as.issuer });
      await c.stack.admin.ok("POST", `/v1/tenants/${TENANT}/oauth-clients`, {
        name: "cc",
        issuer: c.as.issuer,
        clientId: "cc-client",
        clientSecret: "cc-secret",
        scopes: ["mcp:tools"],
      });
      await c.stack.admin.ok("POST", `/v1/tenants/${TENANT}/upstreams`, {
        name: "gamma",
        transport: "streamable-http",
        url: c.gamma.url,
        auth: { mode: "oauth-client-credentials", oauthClient: "cc", resource: c.gamma.resource },
      });
    }
    return c;
  }

  /** `npm run start:worker` as a process (`apps/api/dist/worker.js`). */
  async startWorker(index: number): Promise<ManagedProcess> {
    const port = await freePort();
    const proc = new ManagedProcess(
      `worker-${index}`,
      process.execPath,
      [`${repoRoot}/apps/api/dist/worker.js`],
      {
        env: {
          DATABASE_URL: this.stack.db.url,
          REDIS_URL: this.redis.url,
          REDIS_KEY_PREFIX: this.stack.redisPrefix,
          SECRETS_KEY: this.stack.secretsKey,
          WORKER_PORT: String(port),
          LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "warn",
        },
      },
    );
    await waitForHttpOk(proc, `http://127.0.0.1:${port}/healthz`, 60_000);
    this.workers[index] = proc;
    return proc;
  }

  /** Restarts the beta upstream process on its port (after a kill). */
  async restartBeta(): Promise<void> {
    this.beta = await startFixture("tools-server.mjs", ["--name", "beta", "--port", String(this.betaPort)]);
  }

  /** Audit rows of tool calls, by the `text` argument (the tenant captures arguments). */
  async auditedTexts(): Promise<Set<string>> {
    const rows = await this.db.prisma.$queryRawUnsafe<Array<{ text: string | null }>>(
      `SELECT details->'args'->>'text' AS text FROM "AuditEvent" WHERE "tenantId" = $1::uuid AND kind = 'tool_call'`,
      this.tenantId,
    );
    return new Set(rows.map((r) => r.text).filter((t): t is string => t !== null));
  }

  /** Successful calls in `records` with no audit row, once the writers had time to flush and retry. */
  async auditLost(records: CallRecord[], settleMs = 15_000): Promise<number> {
    const ok = records.filter((r) => r.ok).map((r) => r.text);
    const deadline = Date.now() + settleMs;
    let lost = ok.length;
    for (;;) {
      const seen = await this.auditedTexts().catch(() => new Set<string>());
      lost = ok.filter((t) => !seen.has(t)).length;
      if (lost === 0 || Date.now() > deadline) return lost;
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /** A gateway node's metric (first sample whose line starts with `name`, label filter optional). */
  async metric(node: number, name: string, labelPart = ""): Promise<number | undefined> {
    const text = await (await fetch(`${this.stack.gateways[node]!.metricsUrl}/metrics`)).text();
    const line = text
      .split("\n")
      .find((l) => l.startsWith(name) && l.includes(labelPart) && !l.startsWith("#"));
    return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
  }

  /** Drops every pub/sub connection on Redis (the bus subscribers of every process). */
  async dropSubscriptions(): Promise<void> {
    const r = new Redis(this.redis.url, { maxRetriesPerRequest: 1 });
    try {
      await r.call("CLIENT", "KILL", "TYPE", "pubsub");
    } finally {
      r.disconnect();
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.kill("SIGTERM", 3000)));
    await this.stack?.stop();
    await this.db?.close().catch(() => {});
    await this.proxy?.close();
    await this.gamma?.close();
    await this.as?.close();
    await Promise.all([this.redis?.close(), this.pg?.close()]);
  }
}
