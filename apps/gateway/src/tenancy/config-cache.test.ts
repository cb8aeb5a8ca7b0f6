// The tenant config cache as distributed mode runs it: real Postgres (a fresh database) and the
// Redis bus (own key prefix), a second RedisBus publishing what the API would. The loader is the
// real one, wrapped only to count its queries.
import { randomBytes } from "node:crypto";
import { createDb, type Db } from "@gatehouse/db";
import { createTestDatabase, type TestDatabase } from "@gatehouse/db/testing";
import { BusChannel } from "@gatehouse/shared";
import { RedisBus } from "@gatehouse/shared/node";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { TenantConfigCache } from "./config-cache.js";
import { loadTenantSnapshot, type TenantState } from "./tenant-state.js";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

let database: TestDatabase;
let db: Db;
let publisher: RedisBus;
const prefix = `gh-cache-${randomBytes(4).toString("hex")}:`;
const open: Array<{ cache: TenantConfigCache; bus: RedisBus }> = [];

beforeAll(async () => {
  database = await createTestDatabase();
  db = await createDb({ databaseUrl: database.url, poolSize: 2 });
  publisher = new RedisBus({ url: REDIS_URL, keyPrefix: prefix });
}, 60_000);

afterEach(async () => {
  for (const o of open.splice(0)) {
    await o.cache.close();
    await o.bus.close();
  }
});

afterAll(async () => {
  await publisher?.close();
  await db?.close();
  await database?.drop();
});

async function tenant(): Promise<{ id: string; slug: string }> {
  const slug = `t-${randomBytes(4).toString("hex")}`;
  const t = await db.prisma.tenant.create({ data: { slug, name: slug } });
  return { id: t.id, slug };
}

/** A cache on its own RedisBus; `loads` counts real loader queries; `warnings` what it logged at warn. */
async function setup() {
  const bus = new RedisBus({ url: REDIS_URL, keyPrefix: prefix });
  const warnings: string[] = [];
  const logger = pino(
    { level: "warn" },
    {
      write: (line: string) => {
        warnings.push((JSON.parse(line) as { msg: string }).msg);
      },
    },
  );
  let loads = 0;
  const cache = new TenantConfigCache({
    prisma: db.prisma,
    bus,
    publicUrl: "http://localhost:8080",
    logger,
    load: (ref) => {
      loads++;
      return loadTenantSnapshot(db.prisma, ref);
    },
  });
  await cache.start();
  open.push({ cache, bus });
  const changes: Array<{ id: string; version: number | null }> = [];
  cache.onChange((id, next) => changes.push({ id, version: next?.version ?? null }));
  return { cache, warnings, changes, loads: () => loads };
}

/** What the API does after a write: bump the version and announce it. */
async function bump(tenantId: string): Promise<number> {
  const t = await db.prisma.tenant.update({
    where: { id: tenantId },
    data: { configVersion: { increment: 1 } },
  });
  await publisher.publish(BusChannel.config, { tenantId, version: t.configVersion });
  return t.configVersion;
}

async function until(what: string, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("tenant config cache (Postgres + Redis bus)", () => {
  it("loads once for concurrent first uses, by slug or id, then serves from memory", async () => {
    const t = await tenant();
    const { cache, loads } = await setup();
    const all = await Promise.all([cache.get(t.slug), cache.get(t.slug), cache.get(t.slug)]);
    expect(all[0]?.id).toBe(t.id);
    expect(all.every((s) => s === all[0])).toBe(true);
    expect(await cache.get(t.id)).toBe(all[0]);
    expect(loads()).toBe(1);
    expect(all[0]?.gatewayUrl).toBe(`http://localhost:8080/t/${t.slug}/mcp`);
  });

  it("remembers unknown tenants briefly and never loads garbage refs", async () => {
    const { cache, loads } = await setup();
    expect(await cache.get("nope")).toBeNull();
    expect(await cache.get("nope")).toBeNull();
    expect(await cache.get("../../etc")).toBeNull();
    expect(loads()).toBe(1);
  });

  it("reloads on a newer bus event, ignores stale ones, drops on delete", async () => {
    const t = await tenant();
    const { cache, changes, loads } = await setup();
    const first = (await cache.get(t.slug)) as TenantState;
    expect(changes).toEqual([{ id: t.id, version: first.version }]);
    const before = loads();
    // A stale event (the version this node already has) loads nothing; the newer one behind it
    // on the same channel (delivered in order) is applied.
    await publisher.publish(BusChannel.config, { tenantId: t.id, version: first.version });
    const v = await bump(t.id);
    await until("the newer version", () => changes.length === 2);
    expect(changes[1]).toEqual({ id: t.id, version: v });
    expect(cache.peek(t.slug)?.version).toBe(v);
    expect(loads()).toBe(before + 1);
    await publisher.publish(BusChannel.config, { tenantId: t.id, version: v + 1, deleted: true });
    await until("the drop", () => changes.length === 3);
    expect(changes[2]).toEqual({ id: t.id, version: null });
    expect(cache.peek(t.slug)).toBeUndefined();
  });

  it("ignores a malformed event (logged), and goes on with the next one", async () => {
    const t = await tenant();
    const { cache, changes, warnings } = await setup();
    await cache.get(t.id);
    // Two malformed events (one with no version), then a well-formed one behind them on the same
    // channel: the malformed ones neither drop nor reload anything, and what follows is handled.
    await publisher.publish(BusChannel.config, { nonsense: true });
    await publisher.publish(BusChannel.config, { tenantId: t.id, deleted: true });
    await publisher.publish(BusChannel.config, { tenantId: t.id, version: 1, deleted: true });
    await until("the drop that followed", () => changes.length === 2);
    expect(changes).toEqual([
      { id: t.id, version: 1 },
      { id: t.id, version: null },
    ]);
    expect(warnings.filter((w) => w === "ignoring malformed config event")).toHaveLength(2);
  });
});
