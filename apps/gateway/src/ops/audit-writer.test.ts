import { randomUUID } from "node:crypto";
import net from "node:net";
import { createDb, type Db } from "@gatehouse/db";
import { createTenantRow, createTestDatabase, type TestDatabase } from "@gatehouse/db/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditWriter, summarizeArguments, type ToolCallEvent } from "./audit-writer.js";
import { createGatewayMetrics } from "./metrics.js";

let testDb: TestDatabase;
let db: Db;
let tenantId: string;

beforeAll(async () => {
  testDb = await createTestDatabase();
  db = await createDb({ databaseUrl: testDb.url });
  tenantId = (await createTenantRow(db.prisma)).id;
});

afterAll(async () => {
  await db?.close();
  await testDb?.drop();
});

function event(over: Partial<ToolCallEvent> = {}): ToolCallEvent {
  return {
    tenantId,
    principalId: "key:k1",
    agent: "scout",
    upstream: "github",
    tool: "get_issue",
    decision: "allow",
    ruleId: "researchers-read",
    outcome: "ok",
    latencyMs: 12.6,
    upstreamLatencyMs: 11.9,
    requestId: randomUUID(),
    ...summarizeArguments({ repo: "a/b", n: 1 }, false),
    at: new Date(),
    ...over,
  };
}

async function countFor(requestIds: string[]): Promise<number> {
  return db.prisma.auditEvent.count({ where: { requestId: { in: requestIds } } });
}

describe("summarizeArguments", () => {
  it("keeps size and hash only, unless capture is on", () => {
    const off = summarizeArguments({ q: "é" }, false);
    expect(off).toEqual({ argsSize: 10, argsHash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(summarizeArguments({ q: "é" }, true)).toEqual({ ...off, args: { q: "é" } });
    expect(summarizeArguments(undefined, true)).toEqual({ argsSize: 0, argsHash: null });
  });
});

describe("AuditWriter (real Postgres)", () => {
  it("writes the event with every field, details holding upstream latency and the args summary", async () => {
    const writer = new AuditWriter({ prisma: db.prisma, flushIntervalMs: 60_000 });
    const e = event({ args: { secret: false } });
    writer.record(e);
    expect(writer.queued).toBe(1);
    await writer.flush();
    const row = await db.prisma.auditEvent.findFirstOrThrow({ where: { requestId: e.requestId } });
    expect(row).toMatchObject({
      tenantId,
      kind: "tool_call",
      actor: "key:k1",
      agent: "scout",
      upstream: "github",
      tool: "get_issue",
      decision: "allow",
      ruleId: "researchers-read",
      outcome: "ok",
      latencyMs: 13,
      requestId: e.requestId,
      details: {
        upstreamLatencyMs: 11.9,
        argsSize: e.argsSize,
        argsHash: e.argsHash,
        args: { secret: false },
      },
    });
    expect(row.at.getTime()).toBe(e.at.getTime());
    await writer.close();
  });

  it("takes the core's event shape (principal object instead of principalId)", async () => {
    const writer = new AuditWriter({ prisma: db.prisma, flushIntervalMs: 60_000 });
    const { principalId: _, ...rest } = event();
    const e = { ...rest, principal: { id: "sub:alice", kind: "jwt" as const, roles: [], claims: {} } };
    writer.record(e);
    await writer.close();
    const row = await db.prisma.auditEvent.findFirstOrThrow({ where: { requestId: e.requestId } });
    expect(row.actor).toBe("sub:alice");
  });

  it("writes on its own once a batch is full, and on the interval otherwise", async () => {
    const bySize = new AuditWriter({ prisma: db.prisma, batchSize: 10, flushIntervalMs: 60_000 });
    const ids = Array.from({ length: 25 }, () => randomUUID());
    for (const requestId of ids) bySize.record(event({ requestId }));
    await expect.poll(() => countFor(ids), { timeout: 5000 }).toBeGreaterThanOrEqual(20);
    await bySize.close();
    expect(await countFor(ids)).toBe(25);

    const byTime = new AuditWriter({ prisma: db.prisma, batchSize: 1000, flushIntervalMs: 50 });
    const few = [randomUUID(), randomUUID()];
    for (const requestId of few) byTime.record(event({ requestId }));
    await expect.poll(() => countFor(few), { timeout: 5000 }).toBe(2);
    await byTime.close();
  });

  it("never blocks: when the queue is full the oldest is dropped and counted", async () => {
    const metrics = createGatewayMetrics({ defaultMetrics: false });
    const writer = new AuditWriter({
      prisma: db.prisma,
      maxQueue: 5,
      batchSize: 100,
      flushIntervalMs: 60_000,
      metrics,
    });
    const ids = Array.from({ length: 8 }, () => randomUUID());
    for (const requestId of ids) writer.record(event({ requestId }));
    expect(writer.stats).toMatchObject({ queued: 5, dropped: 3 });
    await writer.close();
    expect(await countFor(ids.slice(0, 3))).toBe(0);
    expect(await countFor(ids.slice(3))).toBe(5);
    const body = (await metrics.render()).body;
    expect(body).toContain('gatehouse_gateway_audit_dropped_total{reason="queue_full"} 3');
    expect(body).toContain("gatehouse_gateway_audit_written_total 5");
    expect(body).toContain("gatehouse_gateway_audit_queue_size 0");
  });

  it("a row the database refuses (deleted tenant) is dropped alone; the rest of the batch is written", async () => {
    const writer = new AuditWriter({ prisma: db.prisma, flushIntervalMs: 60_000 });
    const good = Array.from({ length: 6 }, () => randomUUID());
    const bad = randomUUID();
    for (const [i, requestId] of good.entries()) {
      writer.record(event({ requestId }));
      if (i === 3) writer.record(event({ requestId: bad, tenantId: randomUUID() }));
    }
    await writer.flush();
    expect(await countFor(good)).toBe(6);
    expect(await countFor([bad])).toBe(0);
    expect(writer.stats).toMatchObject({ dropped: 1, queued: 0 });
    await writer.close();
  });

  it("keeps events while the database is unreachable and writes them when it is back", async () => {
    const proxy = await startTcpProxy(Number(new URL(testDb.url).port || 5432));
    const url = new URL(testDb.url);
    url.port = String(proxy.port);
    const viaProxy = await createDb({ databaseUrl: url.toString() });
    const writer = new AuditWriter({ prisma: viaProxy.prisma, flushIntervalMs: 60_000 });
    try {
      const before = randomUUID();
      writer.record(event({ requestId: before }));
      await writer.flush();
      expect(await countFor([before])).toBe(1);

      await proxy.stop();
      const during = Array.from({ length: 3 }, () => randomUUID());
      for (const requestId of during) writer.record(event({ requestId }));
      await expect(writer.flush()).rejects.toThrow();
      expect(writer.queued).toBe(3);

      await proxy.start();
      await writer.close();
      expect(await countFor(during)).toBe(3);
      expect(writer.stats.dropped).toBe(0);
    } finally {
      await writer.close();
      await viaProxy.close();
      await proxy.stop();
    }
  });

  it("close() gives up after its timeout when the database stays away, counting the loss", async () => {
    const metrics = createGatewayMetrics({ defaultMetrics: false });
    const dead = await deadPort();
    const url = new URL(testDb.url);
    url.port = String(dead);
    const unreachable = await createDb({ databaseUrl: url.toString() });
    const writer = new AuditWriter({ prisma: unreachable.prisma, flushIntervalMs: 60_000, metrics });
    writer.record(event());
    writer.record(event());
    const started = Date.now();
    await writer.close(300);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(writer.stats).toMatchObject({ queued: 0, dropped: 2 });
    writer.record(event());
    expect(writer.stats.dropped).toBe(3);
    expect((await metrics.render()).body).toContain(
      'gatehouse_gateway_audit_dropped_total{reason="shutdown"} 3',
    );
    await unreachable.close();
  });
});

async function deadPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A TCP forwarder to Postgres that can be stopped (dropping every connection) and started again. */
async function startTcpProxy(targetPort: number) {
  const port = await deadPort();
  let server: net.Server | null = null;
  const sockets = new Set<net.Socket>();
  const start = async () => {
    server = net.createServer((client) => {
      const upstream = net.connect(targetPort, "127.0.0.1");
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on("close", () => sockets.delete(s));
        s.on("error", () => {});
      }
      client.pipe(upstream).pipe(client);
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
    });
    const s = server;
    await new Promise<void>((resolve) => s.listen(port, "127.0.0.1", resolve));
  };
  const stop = async () => {
    const s = server;
    server = null;
    for (const socket of sockets) socket.destroy();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  };
  await start();
  return { port, start, stop };
}
