import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDb, type Db } from "./client.js";
import { migrationStatus } from "./migrate.js";
import {
  createMemberRow,
  createTenantRow,
  createTestDatabase,
  createUpstreamRow,
  type TestDatabase,
} from "./testing.js";

const uuidV7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The same round trip on both kinds: uuid(7) ids, enums, Json, String[], relations, transactions. */
async function roundTrip(db: Db): Promise<void> {
  const tenant = await createTenantRow(db.prisma, {
    slug: "acme",
    name: "Acme",
    settings: { anonymousAccess: false },
  });
  expect(tenant.id).toMatch(uuidV7);
  expect(tenant.configVersion).toBe(1);
  const member = await createMemberRow(db.prisma, tenant.id, { email: "a@acme.test", role: "admin" });
  const upstream = await createUpstreamRow(db.prisma, tenant.id, { name: "files", args: ["--a", "b"] });
  await db.prisma.apiKey.create({
    data: { tenantId: tenant.id, name: "ci", prefix: "mgw_abcd", hash: "h1", roles: ["reader", "writer"] },
  });

  const bumped = await db.prisma.$transaction(async (tx) => {
    await tx.upstream.update({ where: { id: upstream.id }, data: { enabled: false } });
    return tx.tenant.update({ where: { id: tenant.id }, data: { configVersion: { increment: 1 } } });
  });
  expect(bumped.configVersion).toBe(2);

  const back = await db.prisma.tenant.findUniqueOrThrow({
    where: { slug: "acme" },
    include: { members: true, upstreams: true, apiKeys: true },
  });
  expect(back).toMatchObject({
    id: tenant.id,
    name: "Acme",
    settings: { anonymousAccess: false },
    configVersion: 2,
  });
  expect(back.members).toEqual([expect.objectContaining({ id: member.id, role: "admin" })]);
  expect(back.upstreams).toEqual([
    expect.objectContaining({
      name: "files",
      transport: "streamable_http",
      args: ["--a", "b"],
      enabled: false,
    }),
  ]);
  expect(back.apiKeys[0]?.roles).toEqual(["reader", "writer"]);
  await expect(createTenantRow(db.prisma, { slug: "acme" })).rejects.toMatchObject({ code: "P2002" });
}

describe("createDb on Postgres", () => {
  let testDb: TestDatabase;
  beforeAll(async () => {
    testDb = await createTestDatabase();
  });
  afterAll(async () => {
    await testDb?.drop();
  });

  it("round-trips a tenant with uuid(7) ids through adapter-pg", async () => {
    const db = await createDb({ databaseUrl: testDb.url, poolSize: 3 });
    try {
      expect(db.kind).toBe("postgres");
      await roundTrip(db);
    } finally {
      await db.close();
      await db.close();
    }
  });

  it("rejects a URL that is not postgres:// or postgresql://", async () => {
    await expect(createDb({ databaseUrl: "mysql://localhost/x" })).rejects.toThrow(
      /postgres:\/\/ or postgresql:\/\//,
    );
  });
});

describe("createDb on PGlite", () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), "gatehouse-db-client-"));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it("migrates a fresh data dir, round-trips a tenant, and keeps it across close and reopen", async () => {
    const first = await createDb({ dataDir });
    try {
      expect(first.kind).toBe("pglite");
      await roundTrip(first);
      await expect(createDb({ dataDir }), "a second open in the same process").rejects.toThrow(
        /already open/,
      );
    } finally {
      await first.close();
    }

    const again = await createDb({ dataDir });
    try {
      const tenant = await again.prisma.tenant.findUnique({ where: { slug: "acme" } });
      expect(tenant).toMatchObject({ name: "Acme", configVersion: 2 });
      expect(tenant?.id).toMatch(uuidV7);
    } finally {
      await again.close();
    }
    expect(await migrationStatus({ dataDir })).toMatchObject({ upToDate: true });
  });
});
