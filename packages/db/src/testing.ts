// Test helpers: a fresh Postgres database per test file, and row factories that double as seed helpers.
import { randomBytes } from "node:crypto";
import pg from "pg";
import type {
  Member,
  MemberRole,
  Prisma,
  PrismaClient,
  Tenant,
  Upstream,
} from "./generated/prisma/client.js";
import { applyMigrations } from "./migrate.js";

export interface TestDatabase {
  /** postgres:// URL of the new database, migrations applied. */
  url: string;
  /** Drops the database, closing whatever still connects to it. Safe to call twice. */
  drop(): Promise<void>;
}

const defaultAdminUrl = "postgres://postgres@127.0.0.1:5432/postgres";

/**
 * Create `gatehouse_test_<random>` on the server of TEST_DATABASE_ADMIN_URL (default
 * postgres://postgres@127.0.0.1:5432/postgres) and apply the migrations to it.
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  const adminUrl = process.env.TEST_DATABASE_ADMIN_URL?.trim() || defaultAdminUrl;
  const name = `gatehouse_test_${randomBytes(6).toString("hex")}`;
  await adminQuery(adminUrl, `CREATE DATABASE "${name}"`);
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  const url = u.toString();
  let dropped: Promise<void> | undefined;
  const drop = () => {
    dropped ??= adminQuery(adminUrl, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    return dropped;
  };
  try {
    await applyMigrations(url);
  } catch (e) {
    await drop().catch(() => {});
    throw e;
  }
  return { url, drop };
}

async function adminQuery(adminUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  client.on("error", () => {});
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end().catch(() => {});
  }
}

function suffix(): string {
  return randomBytes(4).toString("hex");
}

/** A Tenant with a unique slug unless given. */
export function createTenantRow(
  prisma: PrismaClient,
  data: Partial<Prisma.TenantCreateInput> = {},
): Promise<Tenant> {
  const slug = data.slug ?? `tenant-${suffix()}`;
  return prisma.tenant.create({ data: { name: data.name ?? slug, ...data, slug } });
}

/** A Member of the tenant (role viewer unless given). */
export function createMemberRow(
  prisma: PrismaClient,
  tenantId: string,
  data: { email?: string; name?: string; role?: MemberRole } = {},
): Promise<Member> {
  return prisma.member.create({
    data: {
      tenantId,
      email: data.email ?? `user-${suffix()}@example.test`,
      name: data.name ?? null,
      role: data.role ?? "viewer",
    },
  });
}

/** A streamable-HTTP Upstream of the tenant; name and tool prefix unique unless given. */
export function createUpstreamRow(
  prisma: PrismaClient,
  tenantId: string,
  data: Partial<Omit<Prisma.UpstreamUncheckedCreateInput, "tenantId">> = {},
): Promise<Upstream> {
  const name = data.name ?? `upstream-${suffix()}`;
  return prisma.upstream.create({
    data: {
      url: "http://127.0.0.1:1/mcp",
      toolPrefix: name.replace(/[^a-zA-Z0-9]+/g, "_"),
      ...data,
      name,
      tenantId,
    },
  });
}
