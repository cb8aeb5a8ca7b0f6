// #8.5: `/t/{tenant}` names a tenant by id when it has an id's shape, by slug otherwise, never both.
// A tenant whose slug is another tenant's id (stored before such slugs were refused) must not answer
// for that id. Real Postgres, the real loader and cache.
import { randomBytes, randomUUID } from "node:crypto";
import { createDb, type Db } from "@gatehouse/db";
import { createTestDatabase, type TestDatabase } from "@gatehouse/db/testing";
import { RedisBus } from "@gatehouse/shared/node";
import { pino } from "pino";
import { afterAll, beforeAll, expect, it } from "vitest";
import { TenantConfigCache } from "./config-cache.js";
import { loadTenantSnapshot } from "./tenant-state.js";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
let database: TestDatabase;
let db: Db;
let bus: RedisBus;
let cache: TenantConfigCache;

beforeAll(async () => {
  database = await createTestDatabase();
  db = await createDb({ databaseUrl: database.url, poolSize: 2 });
  bus = new RedisBus({ url: REDIS_URL, keyPrefix: `gh-ref-${randomBytes(4).toString("hex")}:` });
  cache = new TenantConfigCache({
    prisma: db.prisma,
    bus,
    publicUrl: "http://localhost:8080",
    logger: pino({ level: "silent" }),
    load: (ref) => loadTenantSnapshot(db.prisma, ref),
  });
  await cache.start();
}, 60_000);

afterAll(async () => {
  await cache?.close();
  await bus?.close();
  await db?.close();
  await database?.drop();
});

it("a tenant whose slug is another tenant's id does not answer for that id", async () => {
  const victim = await db.prisma.tenant.create({
    data: { slug: `v-${randomBytes(4).toString("hex")}`, name: "v" },
  });
  // Written straight to the database: the API refuses such a slug now, older rows may hold one.
  const squatter = await db.prisma.tenant.create({ data: { id: randomUUID(), slug: victim.id, name: "s" } });

  // The squatter is loaded first (by its own id), then the victim is asked for by id.
  expect((await cache.get(squatter.id))?.id).toBe(squatter.id);
  expect((await cache.get(victim.id))?.id).toBe(victim.id);
  expect((await cache.get(victim.id.toUpperCase()))?.id).toBe(victim.id);
  expect(cache.peek(victim.id)?.id).toBe(victim.id);
  // Straight from the loader as well, in either order of rows.
  expect((await loadTenantSnapshot(db.prisma, victim.id))?.tenantId).toBe(victim.id);
  // An id-shaped slug is never a way in: the squatter is reached by its id only.
  const fresh = new TenantConfigCache({
    prisma: db.prisma,
    bus,
    publicUrl: "http://localhost:8080",
    logger: pino({ level: "silent" }),
    load: (ref) => loadTenantSnapshot(db.prisma, ref),
  });
  expect((await fresh.get(victim.id))?.id).toBe(victim.id);
  await fresh.close();
});
