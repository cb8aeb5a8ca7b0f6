import { randomBytes, randomUUID } from "node:crypto";
import { createDb, type Db } from "@gatehouse/db";
import { createTenantRow, createTestDatabase, type TestDatabase } from "@gatehouse/db/testing";
import { Redis } from "ioredis";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { summarizeArguments } from "./audit-writer.js";
import { createOps } from "./ops.js";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
let testDb: TestDatabase;
let db: Db;
let tenantId: string;

beforeAll(async () => {
  testDb = await createTestDatabase();
  db = await createDb({ databaseUrl: testDb.url });
  tenantId = (await createTenantRow(db.prisma, { slug: "acme" })).id;
});

afterAll(async () => {
  await db?.close();
  await testDb?.drop();
});

describe("createOps (real Redis and Postgres)", () => {
  it("wires limiter, audit, metrics and the node registry together, and tears them down", async () => {
    const prefix = `test:${randomBytes(6).toString("hex")}:`;
    const registry = new Registry();
    const ops = await createOps({
      prisma: db.prisma,
      nodeId: "node-ops",
      version: "0.1.0",
      redisUrl: REDIS_URL,
      redisKeyPrefix: prefix,
      registry,
      audit: { flushIntervalMs: 60_000 },
    });
    ops.setTenantLabeler((id) => (id === tenantId ? "acme" : undefined));
    await ops.start(() => ({ [tenantId]: 4 }));
    expect(await db.prisma.gatewayNode.findUnique({ where: { id: "node-ops" } })).toMatchObject({
      configVersions: { [tenantId]: 4 },
    });

    // start() waited for the rate-limit connection: these go to the shared bucket.
    for (let i = 0; i < 2; i++)
      expect((await ops.rateLimiter.take(`key:${tenantId}:key:k1`, 2)).ok).toBe(true);
    const refused = await ops.rateLimiter.take(`key:${tenantId}:key:k1`, 2);
    expect(refused.ok).toBe(false);
    const admin = new Redis(REDIS_URL);
    expect(await admin.exists(`${prefix}rl:key:${tenantId}:key:k1`)).toBe(1);

    const requestId = randomUUID();
    ops.metrics.setUpstreamCatalog(tenantId, "github", ["get_issue"]);
    ops.audit.record({
      tenantId,
      principalId: "key:k1",
      agent: "scout",
      upstream: "github",
      tool: "get_issue",
      decision: "allow",
      ruleId: "r1",
      outcome: "ok",
      latencyMs: 3,
      upstreamLatencyMs: 2,
      requestId,
      ...summarizeArguments({ a: 1 }, false),
      at: new Date(),
    });
    const body = await registry.metrics();
    expect(body).toContain('gatehouse_gateway_rate_limit_rejections_total{tenant="acme",scope="key"} 1');
    expect(body).toContain(
      'gatehouse_gateway_tool_calls_total{tenant="acme",upstream="github",tool="get_issue",outcome="ok"} 1',
    );
    expect(body).toContain("gatehouse_gateway_rate_limit_local_fallback 0");

    const breaker = ops.breakers.get(`${tenantId}/github`);
    for (let i = 0; i < 5; i++) breaker.tryAcquire()?.failure();
    expect(await registry.metrics()).toContain(
      'gatehouse_gateway_upstream_circuit_state{tenant="acme",upstream="github"} 2',
    );

    await ops.close();
    expect(await db.prisma.auditEvent.count({ where: { requestId } })).toBe(1);
    expect(await db.prisma.gatewayNode.count({ where: { id: "node-ops" } })).toBe(0);
    await admin.del(`${prefix}rl:key:${tenantId}:key:k1`);
    admin.disconnect();
  });

  it("embedded mode: no Redis, in-process buckets", async () => {
    const ops = await createOps({ prisma: db.prisma, nodeId: "node-embedded", version: "0.1.0" });
    expect((await ops.rateLimiter.take(`tenant:${tenantId}`, 1)).ok).toBe(true);
    expect((await ops.rateLimiter.take(`tenant:${tenantId}`, 1)).ok).toBe(false);
    expect(await ops.metrics.registry.metrics()).toContain(
      `gatehouse_gateway_rate_limit_rejections_total{tenant="${tenantId}",scope="tenant"} 1`,
    );
    expect(ops.tracing.enabled).toBe(false);
    await ops.close();
  });
});
