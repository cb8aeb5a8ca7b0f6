// Shared setup for the gateway's integration tests: a fresh Postgres database, a Redis key prefix,
// rows seeded with Prisma directly, and gateway nodes wired like production (RedisBus + RedisSessionStore).
import { randomBytes } from "node:crypto";
import { createDb, type Db } from "@gatehouse/db";
import { createTestDatabase } from "@gatehouse/db/testing";
import { BusChannel } from "@gatehouse/shared";
import { createSealer, generateApiKey, RedisBus } from "@gatehouse/shared/node";
import { Redis } from "ioredis";
import { type Logger, pino } from "pino";
import { type GatewayConfig, gatewayConfig } from "../src/config/gateway.config.js";
import { createGateway, type Gateway } from "../src/gateway.js";
import { type GatewayNode, startGatewayNode } from "../src/node.js";
import type { AuditSink, RateLimiter, ToolCallEvent } from "../src/ports.js";
import { RedisSessionStore } from "../src/sessions/session-store.js";

export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
export const SECRETS_KEY = randomBytes(32).toString("base64");

export interface Node {
  gateway: Gateway;
  url: string;
  /** The metrics listener: `http://127.0.0.1:<metricsPort>` (/metrics is not on `url`). */
  metricsUrl: string;
  bus: RedisBus;
  store: RedisSessionStore;
  audit: ToolCallEvent[];
  close(): Promise<void>;
}

/** A node as production runs it: `startGatewayNode` (core + ops: Redis rate limits, audit writer, …). */
export interface OpsNode {
  node: GatewayNode;
  url: string;
  /** The metrics listener: `http://127.0.0.1:<metricsPort>`. */
  metricsUrl: string;
  nodeId: string;
  close(): Promise<void>;
}

export interface Harness {
  db: Db;
  prefix: string;
  publisher: RedisBus;
  startNode(opts?: {
    rateLimiter?: RateLimiter;
    allowStdio?: boolean;
    /** Config on top of the test defaults (e.g. `sseResponses: false`). */
    config?: Partial<GatewayConfig>;
  }): Promise<Node>;
  /** `startGatewayNode` on a free port with the test defaults, audit flushed every 100 ms. */
  startOpsNode(overrides?: Partial<GatewayConfig>, opts?: { logger?: Logger }): Promise<OpsNode>;
  /** What the API does after a write: bump the version and publish it. */
  bump(tenantId: string): Promise<number>;
  close(): Promise<void>;
}

export async function createHarness(): Promise<Harness> {
  const database = await createTestDatabase();
  const db = await createDb({ databaseUrl: database.url, poolSize: 4 });
  const prefix = `gh-test-${randomBytes(4).toString("hex")}:`;
  const publisher = new RedisBus({ url: REDIS_URL, keyPrefix: prefix });
  const nodes: Array<{ close(): Promise<void> }> = [];
  return {
    db,
    prefix,
    publisher,
    async startOpsNode(overrides = {}, opts = {}) {
      const nodeId = overrides.nodeId ?? `ops-${randomBytes(3).toString("hex")}`;
      const bus = new RedisBus({ url: REDIS_URL, keyPrefix: prefix });
      const config = gatewayConfig({
        port: 0,
        host: "127.0.0.1",
        publicUrl: "http://localhost:8080",
        secretsKey: SECRETS_KEY,
        redisUrl: REDIS_URL,
        redisKeyPrefix: prefix,
        upstreamConnectTimeoutMs: 1500,
        upstreamRetryAfterMs: 0,
        configRecheckMs: 0,
        maxBodyBytes: 64 * 1024,
        ...overrides,
        nodeId,
      });
      const node = await startGatewayNode({
        config,
        db,
        bus,
        logger: opts.logger ?? pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" }),
        ops: { audit: { flushIntervalMs: 100 }, heartbeatMs: 500 },
      });
      let closed = false;
      const ops: OpsNode = {
        node,
        nodeId,
        url: `http://127.0.0.1:${node.port}`,
        metricsUrl: `http://127.0.0.1:${node.metricsPort}`,
        async close() {
          if (closed) return;
          closed = true;
          await node.close();
          await bus.close();
        },
      };
      nodes.push(ops);
      return ops;
    },
    async startNode(opts = {}) {
      const bus = new RedisBus({ url: REDIS_URL, keyPrefix: prefix });
      const store = new RedisSessionStore({ url: REDIS_URL, keyPrefix: prefix, ttlSeconds: 600 });
      const events: ToolCallEvent[] = [];
      const audit: AuditSink = { record: (e) => events.push(e), flush: async () => {} };
      const config = gatewayConfig({
        publicUrl: "http://localhost:8080",
        secretsKey: SECRETS_KEY,
        upstreamConnectTimeoutMs: 1500,
        upstreamRetryAfterMs: 2000,
        allowStdio: opts.allowStdio ?? false,
        configRecheckMs: 0,
        maxBodyBytes: 64 * 1024,
        ...opts.config,
      });
      const gateway = await createGateway({
        config,
        db,
        bus,
        sessions: store,
        audit,
        logger: pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" }),
        ...(opts.rateLimiter ? { rateLimiter: opts.rateLimiter } : {}),
      });
      const { port, metricsPort } = await gateway.listen(0, "127.0.0.1");
      let closed = false;
      const node: Node = {
        gateway,
        url: `http://127.0.0.1:${port}`,
        metricsUrl: `http://127.0.0.1:${metricsPort}`,
        bus,
        store,
        audit: events,
        async close() {
          if (closed) return;
          closed = true;
          await gateway.close();
          await store.close();
          await bus.close();
        },
      };
      nodes.push(node);
      return node;
    },
    async bump(tenantId) {
      const t = await db.prisma.tenant.update({
        where: { id: tenantId },
        data: { configVersion: { increment: 1 } },
      });
      await publisher.publish(BusChannel.config, { tenantId, version: t.configVersion });
      return t.configVersion;
    },
    async close() {
      for (const n of nodes) await n.close().catch(() => {});
      await publisher.close();
      const redis = new Redis(REDIS_URL);
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length) await redis.del(...keys);
      await redis.quit();
      await db.close();
      await database.drop();
    },
  };
}

export const sealer = createSealer(SECRETS_KEY);

export async function seedKey(
  db: Db,
  tenantId: string,
  opts: { agent?: string; roles?: string[]; rateLimitPerMinute?: number } = {},
): Promise<{ id: string; key: string }> {
  const k = generateApiKey();
  const row = await db.prisma.apiKey.create({
    data: {
      tenantId,
      name: `key-${randomBytes(3).toString("hex")}`,
      agent: opts.agent ?? null,
      roles: opts.roles ?? [],
      prefix: k.prefix,
      hash: k.hash,
      rateLimitPerMinute: opts.rateLimitPerMinute ?? null,
    },
  });
  return { id: row.id, key: k.key };
}

/** Reads JSON-RPC messages off an SSE response body. */
export function sseMessages(res: Response): { next(): Promise<Record<string, unknown>> } {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  const queue: Record<string, unknown>[] = [];
  return {
    async next() {
      for (;;) {
        const q = queue.shift();
        if (q) return q;
        const { value, done } = await reader.read();
        if (done) throw new Error("stream ended");
        buf += decoder.decode(value, { stream: true });
        let i = buf.indexOf("\n\n");
        while (i >= 0) {
          const event = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = event
            .split("\n")
            .filter((l) => l.startsWith("data:"))
            .map((l) => l.slice(5).trim())
            .join("\n");
          if (data) queue.push(JSON.parse(data) as Record<string, unknown>);
          i = buf.indexOf("\n\n");
        }
      }
    },
  };
}
