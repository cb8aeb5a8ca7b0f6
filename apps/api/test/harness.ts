// Builds the API the two ways it runs: distributed (a fresh Postgres database + Redis with a random
// key prefix) and embedded (PGlite in a temp dir + the in-process bus). Tests drive it over HTTP
// through Fastify's inject, and read the database back with the app's own Prisma client.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { PrismaClient } from "@gatehouse/db";
import { createTestDatabase } from "@gatehouse/db/testing";
import { type Bus, BusChannel, type ConfigEvent } from "@gatehouse/shared";
import { generateSecretsKey, RedisBus } from "@gatehouse/shared/node";
import type { NestFastifyApplication } from "@nestjs/platform-fastify";
import { Redis } from "ioredis";
import { createApiApp } from "../src/app.js";
import { BUS, PRISMA } from "../src/common/tokens.js";
import { type ApiConfig, apiConfig } from "../src/config/api.config.js";

export const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

// biome-ignore lint/suspicious/noExplicitAny: tests read JSON answers loosely
export interface Reply<T = any> {
  status: number;
  body: T;
  headers: Record<string, string | string[] | number | undefined>;
}

export interface RequestOptions {
  /** Bearer token; default the platform admin token, `null` for none. */
  token?: string | null;
  body?: unknown;
  /** Sent as is, with content-type application/json. */
  rawBody?: string;
  /** Content-Type of a body; default application/json, null sends none. */
  contentType?: string | null;
}

export interface Harness {
  mode: string;
  app: NestFastifyApplication;
  config: ApiConfig;
  prisma: PrismaClient;
  /** Every config event seen on the bus, by a subscriber of its own. */
  events: ConfigEvent[];
  // biome-ignore lint/suspicious/noExplicitAny: tests read JSON answers loosely
  request<T = any>(method: string, url: string, options?: RequestOptions): Promise<Reply<T>>;
  /** Waits for the event announcing `version` of `tenantId` (or any newer one for that tenant when omitted). */
  waitForEvent(tenantId: string, match?: Partial<ConfigEvent>): Promise<ConfigEvent>;
  close(): Promise<void>;
}

async function finish(
  mode: string,
  app: NestFastifyApplication,
  config: ApiConfig,
  subscriber: Bus,
  cleanup: () => Promise<void>,
): Promise<Harness> {
  const events: ConfigEvent[] = [];
  const unsubscribe = await subscriber.subscribe(BusChannel.config, (m) => events.push(m as ConfigEvent));
  const fastify = app.getHttpAdapter().getInstance();
  return {
    mode,
    app,
    config,
    prisma: app.get<symbol, PrismaClient>(PRISMA),
    events,
    async request(method, url, options = {}) {
      const token = options.token === undefined ? config.ADMIN_TOKEN : options.token;
      const headers: Record<string, string> = {};
      if (token) headers.authorization = `Bearer ${token}`;
      let payload: string | undefined;
      if (options.rawBody !== undefined) payload = options.rawBody;
      else if (options.body !== undefined) payload = JSON.stringify(options.body);
      if (payload !== undefined && options.contentType !== null)
        headers["content-type"] = options.contentType ?? "application/json";
      const res = await fastify.inject({ method: method as "GET", url, headers, payload });
      const text = res.body;
      let body: unknown = text;
      if ((res.headers["content-type"] ?? "").toString().includes("json") && text) body = JSON.parse(text);
      return { status: res.statusCode, body: body as never, headers: res.headers };
    },
    async waitForEvent(tenantId, match = {}) {
      const deadline = Date.now() + 3000;
      for (;;) {
        const found = events.find(
          (e) =>
            e.tenantId === tenantId &&
            (match.version === undefined || e.version === match.version) &&
            (match.deleted === undefined || e.deleted === match.deleted),
        );
        if (found) return found;
        if (Date.now() > deadline) {
          throw new Error(
            `no config event for ${tenantId} ${JSON.stringify(match)}; saw ${JSON.stringify(events)}`,
          );
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async close() {
      await unsubscribe();
      await app.close();
      await cleanup();
    },
  };
}

/** Distributed mode: the app opens Postgres and the Redis bus itself, from its config. */
export async function startDistributed(overrides: Partial<ApiConfig> = {}): Promise<Harness> {
  const database = await createTestDatabase();
  const keyPrefix = `gatehouse-test-${randomBytes(6).toString("hex")}:`;
  const config = apiConfig({
    ADMIN_TOKEN: `platform-${randomBytes(16).toString("hex")}`,
    SECRETS_KEY: generateSecretsKey(),
    DATABASE_URL: database.url,
    REDIS_URL: REDIS_URL,
    REDIS_KEY_PREFIX: keyPrefix,
    LOG_LEVEL: "silent",
    ...overrides,
  });
  const app = await createApiApp(config);
  const subscriber = new RedisBus({ url: REDIS_URL, keyPrefix });
  return finish("postgres+redis", app, config, subscriber, async () => {
    await subscriber.close();
    await deleteKeys(keyPrefix);
    await database.drop();
  });
}

/** Embedded mode: PGlite in a temp dir, the in-process bus (subscribed to directly). */
export async function startEmbeddedMode(): Promise<Harness> {
  const dataDir = await mkdtemp(join(tmpdir(), "gatehouse-api-test-"));
  const config = apiConfig({
    ADMIN_TOKEN: `platform-${randomBytes(16).toString("hex")}`,
    SECRETS_KEY: generateSecretsKey(),
    DATA_DIR: dataDir,
    LOG_LEVEL: "silent",
  });
  const app = await createApiApp(config);
  return finish("embedded", app, config, app.get<symbol, Bus>(BUS), async () => {
    await rm(dataDir, { recursive: true, force: true });
  });
}

async function deleteKeys(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true });
  try {
    await redis.connect();
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 500);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}
