import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { type BusLogger, RedisBus, type RedisBusOptions } from "./redis-bus.js";

// Real Redis (conventions.md: integration tests talk to the real thing), isolated by a random prefix.
const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

const open: RedisBus[] = [];
const admins: Redis[] = [];

function quietLogger(): BusLogger & { warnings: string[]; infos: string[] } {
  const warnings: string[] = [];
  const infos: string[] = [];
  return { warnings, infos, warn: (_o, msg) => warnings.push(msg), info: (_o, msg) => infos.push(msg) };
}

function makeBus(over: Partial<RedisBusOptions> = {}): RedisBus {
  const bus = new RedisBus({
    url: REDIS_URL,
    keyPrefix: `test:${randomBytes(6).toString("hex")}:`,
    logger: quietLogger(),
    ...over,
  });
  open.push(bus);
  return bus;
}

function admin(): Redis {
  const r = new Redis(REDIS_URL);
  admins.push(r);
  return r;
}

async function until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const started = Date.now();
  while (!cond()) {
    if (Date.now() - started > timeoutMs) throw new Error("timed out waiting for condition");
    await new Promise((r) => setTimeout(r, 10));
  }
}

function tcpHandles(): number {
  return process.getActiveResourcesInfo().filter((r) => r === "TCPSocketWrap" || r === "TCPWRAP").length;
}

function timers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
}

afterEach(async () => {
  await Promise.all(open.splice(0).map((b) => b.close()));
  await Promise.all(
    admins.splice(0).map(async (r) => {
      const ended = new Promise((resolve) => r.once("end", resolve));
      await r.quit();
      await ended;
    }),
  );
});

describe("RedisBus", () => {
  it("delivers JSON messages to subscribers of the channel, across instances", async () => {
    const prefix = `test:${randomBytes(6).toString("hex")}:`;
    const a = makeBus({ keyPrefix: prefix });
    const b = makeBus({ keyPrefix: prefix });
    const gotA: unknown[] = [];
    const gotB: unknown[] = [];
    const credentials: unknown[] = [];
    await a.subscribe("config", (m) => gotA.push(m));
    await b.subscribe("config", (m) => gotB.push(m));
    await b.subscribe("credentials", (m) => credentials.push(m));
    await until(() => a.connected && b.connected);

    await a.publish("config", { tenantId: "t1", version: 3 });
    await until(() => gotA.length === 1 && gotB.length === 1);
    expect(gotB[0]).toEqual({ tenantId: "t1", version: 3 });
    expect(gotA[0]).toEqual({ tenantId: "t1", version: 3 });
    expect(credentials).toEqual([]);
  });

  it("keeps buses with different key prefixes apart", async () => {
    const a = makeBus();
    const b = makeBus();
    const gotA: unknown[] = [];
    const gotB: unknown[] = [];
    await a.subscribe("config", (m) => gotA.push(m));
    await b.subscribe("config", (m) => gotB.push(m));
    await a.publish("config", { from: "a" });
    await b.publish("config", { from: "b" });
    await until(() => gotA.length === 1 && gotB.length === 1);
    await new Promise((r) => setTimeout(r, 50));
    expect(gotA).toEqual([{ from: "a" }]);
    expect(gotB).toEqual([{ from: "b" }]);
  });

  it("publishes on the prefixed Redis channel", async () => {
    const prefix = `test:${randomBytes(6).toString("hex")}:`;
    const bus = makeBus({ keyPrefix: prefix });
    const raw = admin();
    const seen: [string, string][] = [];
    raw.on("message", (ch: string, msg: string) => seen.push([ch, msg]));
    await raw.subscribe(`${prefix}config`);
    await bus.publish("config", { tenantId: "t", version: 1 });
    await until(() => seen.length === 1);
    expect(seen[0]).toEqual([`${prefix}config`, '{"tenantId":"t","version":1}']);
  });

  it("unsubscribe stops delivery; other handlers keep theirs", async () => {
    const bus = makeBus();
    const one: unknown[] = [];
    const two: unknown[] = [];
    const off1 = await bus.subscribe("config", (m) => one.push(m));
    const off2 = await bus.subscribe("config", (m) => two.push(m));
    await bus.publish("config", 1);
    await until(() => one.length === 1 && two.length === 1);
    await off1();
    await off1(); // idempotent
    await bus.publish("config", 2);
    await until(() => two.length === 2);
    expect(one).toEqual([1]);
    await off2();
    await bus.publish("config", 3);
    await new Promise((r) => setTimeout(r, 50));
    expect(two).toEqual([1, 2]);
  });

  it("survives a throwing handler and drops non-JSON messages with a warning", async () => {
    const prefix = `test:${randomBytes(6).toString("hex")}:`;
    const logger = quietLogger();
    const bus = makeBus({ keyPrefix: prefix, logger });
    const got: unknown[] = [];
    await bus.subscribe("config", () => {
      throw new Error("boom");
    });
    await bus.subscribe("config", (m) => got.push(m));
    await admin().publish(`${prefix}config`, "not json {");
    await bus.publish("config", { ok: true });
    await until(() => got.length === 1);
    expect(got).toEqual([{ ok: true }]);
    expect(logger.warnings).toContain("Redis bus dropped a message that is not JSON");
    expect(logger.warnings).toContain("Redis bus handler failed");
  });

  it("resubscribes and fires onReconnect after the subscriber connection is killed, not at first connect", async () => {
    const name = `gh-test-${randomBytes(4).toString("hex")}`;
    const logger = quietLogger();
    const bus = makeBus({ connectionName: name, logger });
    const got: unknown[] = [];
    let reconnects = 0;
    bus.onReconnect(() => {
      reconnects++;
    });
    await bus.subscribe("config", (m) => got.push(m));
    await until(() => bus.connected);
    await bus.publish("config", "before");
    await until(() => got.length === 1);
    expect(reconnects).toBe(0);

    const r = admin();
    const list = (await r.client("LIST")) as string;
    const line = list.split("\n").find((l) => l.includes(` name=${name}-sub `));
    const id = line?.match(/\bid=(\d+)/)?.[1];
    expect(id).toBeDefined();
    await r.client("KILL", "ID", id as string);

    await until(() => reconnects === 1);
    expect(bus.connected).toBe(true);
    expect(logger.infos).toContain("Redis bus reconnected");
    // The subscription is back by the time the handler ran.
    await bus.publish("config", "after");
    await until(() => got.length === 2);
    expect(got).toEqual(["before", "after"]);
    expect(reconnects).toBe(1);
  });

  it("close() quits both connections and leaves no open sockets", async () => {
    const before = tcpHandles();
    const bus = new RedisBus({
      url: REDIS_URL,
      keyPrefix: `test:${randomBytes(6).toString("hex")}:`,
      logger: quietLogger(),
    });
    await bus.subscribe("config", () => {});
    await bus.publish("config", { x: 1 });
    await until(() => bus.connected);
    expect(tcpHandles()).toBeGreaterThanOrEqual(before + 2);
    await bus.close();
    // Both sockets are closed by the time close() resolves.
    expect(tcpHandles()).toBe(before);
    await bus.close(); // idempotent
    expect(bus.connected).toBe(false);
    await expect(bus.publish("config", {})).rejects.toThrow(/closed/);
  });

  it("close() settles pending calls and stops reconnecting when Redis was never reachable", async () => {
    const before = { tcp: tcpHandles(), timers: timers() };
    const logger = quietLogger();
    const bus = new RedisBus({ url: "redis://127.0.0.1:1", logger });
    const subscribed = bus.subscribe("config", () => {});
    await new Promise((r) => setTimeout(r, 50));
    expect(bus.connected).toBe(false);
    expect(logger.warnings).toContain("Redis bus subscriber lost its connection; reconnecting");
    const published = bus.publish("config", { x: 1 });
    await bus.close();
    await expect(subscribed).rejects.toThrow(/closed/);
    await expect(published).rejects.toThrow();
    // ioredis' disconnect timer is capped at 200 ms (see redis-bus.ts); nothing else lingers.
    await until(() => tcpHandles() <= before.tcp && timers() <= before.timers, 500);
  });
});
