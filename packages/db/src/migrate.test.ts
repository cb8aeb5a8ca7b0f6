import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { PGlite } from "@electric-sql/pglite";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyMigrations, diffMigration, migrationStatus, packageRoot, readMigrations } from "./migrate.js";

const adminUrl = process.env.TEST_DATABASE_ADMIN_URL?.trim() || "postgres://postgres@127.0.0.1:5432/postgres";
const migrationsDir = path.join(packageRoot, "prisma", "migrations");
const localMigrations = readMigrations(migrationsDir).migrationDirectories.map((d) => d.path);
const created: string[] = [];
const tmpDirs: string[] = [];

/** A fresh, empty Postgres database (no migrations applied). */
async function freshDatabase(): Promise<string> {
  const name = `gatehouse_test_${randomBytes(6).toString("hex")}`;
  await admin(`CREATE DATABASE "${name}"`);
  created.push(name);
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

async function query<T>(url: string, sql: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql)).rows as T[];
  } finally {
    await c.end();
  }
}

function tmp(prefix: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), `gatehouse-db-${prefix}-`));
  tmpDirs.push(dir);
  return dir;
}

/** A copy of packages/db/prisma to change freely. */
function prismaCopy(): string {
  const dir = tmp("prisma");
  cpSync(path.join(packageRoot, "prisma"), dir, { recursive: true });
  return dir;
}

function addMigration(prismaDir: string, name: string, sql: string): void {
  const dir = path.join(prismaDir, "migrations", name);
  mkdirSync(dir);
  writeFileSync(path.join(dir, "migration.sql"), sql);
}

afterAll(async () => {
  for (const name of created) await admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  for (const dir of tmpDirs) rmSync(dir, { recursive: true, force: true });
});

interface MigrationRow {
  migration_name: string;
  checksum: string;
  finished_at: Date | null;
  rolled_back_at: Date | null;
  logs: string | null;
  applied_steps_count: number;
}

it("has the committed initial migration", () => {
  expect(localMigrations.length).toBeGreaterThan(0);
  expect(localMigrations[0]).toMatch(/^\d{14}_init$/);
  expect(existsSync(path.join(migrationsDir, "migration_lock.toml"))).toBe(true);
  expect(existsSync(path.join(migrationsDir, "schema.snapshot.prisma"))).toBe(true);
});

describe("on Postgres", () => {
  it("applies every migration to a fresh database and records it as prisma migrate deploy does", async () => {
    const url = await freshDatabase();
    const before = await migrationStatus(url);
    expect(before).toMatchObject({ upToDate: false, hasMigrationsTable: false, pending: localMigrations });

    expect(await applyMigrations(url)).toEqual({ applied: localMigrations });

    const rows = await query<MigrationRow>(url, 'SELECT * FROM "_prisma_migrations" ORDER BY migration_name');
    expect(rows.map((r) => r.migration_name)).toEqual(localMigrations);
    for (const row of rows) {
      const sql = readFileSync(path.join(migrationsDir, row.migration_name, "migration.sql"));
      expect(row.checksum).toBe(createHash("sha256").update(sql).digest("hex"));
      expect(row.finished_at).toBeInstanceOf(Date);
      expect(row.rolled_back_at).toBeNull();
      expect(row.applied_steps_count).toBe(1);
    }
    const tables = await query<{ tablename: string }>(
      url,
      "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
    );
    expect(tables.map((t) => t.tablename)).toEqual(
      expect.arrayContaining(["Tenant", "ApiKey", "AuditEvent"]),
    );

    expect(await applyMigrations(url)).toEqual({ applied: [] });
    expect(await migrationStatus(url)).toMatchObject({
      upToDate: true,
      hasMigrationsTable: true,
      pending: [],
      failed: [],
      edited: [],
      unknown: [],
    });
  });

  it("runs concurrent deploys against one fresh database: all succeed, the migrations apply once", async () => {
    const url = await freshDatabase();
    const results = await Promise.all([applyMigrations(url), applyMigrations(url), applyMigrations(url)]);
    expect(results.flatMap((r) => r.applied)).toEqual(localMigrations);
    const rows = await query<MigrationRow>(url, 'SELECT * FROM "_prisma_migrations"');
    expect(rows).toHaveLength(localMigrations.length);
    expect(rows.every((r) => r.finished_at !== null)).toBe(true);
  });

  it("reports a failing migration, records it as failed and blocks later deploys", async () => {
    const prismaDir = prismaCopy();
    addMigration(
      prismaDir,
      "99990101000000_broken",
      'ALTER TABLE "Tenant" ADD COLUMN "x" nope_no_such_type;\n',
    );
    const url = await freshDatabase();
    await expect(applyMigrations(url, { prismaDir })).rejects.toThrow(/nope_no_such_type/);
    const status = await migrationStatus(url, { prismaDir });
    expect(status.upToDate).toBe(false);
    expect(status.failed).toEqual(["99990101000000_broken"]);
    await expect(applyMigrations(url, { prismaDir })).rejects.toThrow(/99990101000000_broken/);
  });

  it("status names migrations edited after they were applied", async () => {
    const prismaDir = prismaCopy();
    const url = await freshDatabase();
    await applyMigrations(url, { prismaDir });
    const first = path.join(prismaDir, "migrations", localMigrations[0] ?? "", "migration.sql");
    writeFileSync(first, `${readFileSync(first, "utf8")}\n-- edited\n`);
    expect(await migrationStatus(url, { prismaDir })).toMatchObject({
      upToDate: false,
      edited: [localMigrations[0]],
    });
  });
});

describe("on PGlite", () => {
  it("applies every migration to a fresh data dir once, and status is up to date", async () => {
    const dataDir = tmp("pglite");
    expect(await applyMigrations({ dataDir })).toEqual({ applied: localMigrations });
    expect(existsSync(path.join(dataDir, "pglite", "PG_VERSION"))).toBe(true);
    expect(existsSync(path.join(dataDir, "pglite.lock"))).toBe(false);
    expect(await applyMigrations({ dataDir })).toEqual({ applied: [] });
    expect(await migrationStatus({ dataDir })).toMatchObject({ upToDate: true, pending: [], failed: [] });
  });

  describe("in memory", () => {
    let db: PGlite;
    beforeAll(async () => {
      db = await PGlite.create();
    });
    afterAll(async () => {
      await db.close();
    });

    it("reports a failing migration as an error, not as applied", async () => {
      const prismaDir = prismaCopy();
      addMigration(
        prismaDir,
        "99990101000000_broken",
        'ALTER TABLE "Tenant" ADD COLUMN "x" nope_no_such_type;\n',
      );
      await expect(applyMigrations({ pglite: db }, { prismaDir })).rejects.toThrow(/nope_no_such_type/);
      const status = await migrationStatus({ pglite: db }, { prismaDir });
      expect(status.failed).toEqual(["99990101000000_broken"]);
      expect(status.pending).toEqual([]);
      const cols = await db.query(
        "SELECT 1 FROM information_schema.columns WHERE table_name = 'Tenant' AND column_name = 'x'",
      );
      expect(cols.rows).toHaveLength(0);
    });
  });
});

describe("diffMigration", () => {
  it("writes nothing when schema.prisma matches the snapshot", async () => {
    const snapshot = readFileSync(path.join(migrationsDir, "schema.snapshot.prisma"), "utf8");
    expect(
      readFileSync(path.join(packageRoot, "prisma", "schema.prisma"), "utf8"),
      "run `npm run db:diff -- <name>`",
    ).toBe(snapshot);
    // On a copy: were the schema ahead of its snapshot, a test must not write into the real folder.
    const prismaDir = prismaCopy();
    const before = readdirSync(path.join(prismaDir, "migrations")).sort();
    expect(await diffMigration("nothing", { prismaDir })).toEqual({ migrationDir: null, sql: "" });
    expect(readdirSync(path.join(prismaDir, "migrations")).sort()).toEqual(before);
    expect(readFileSync(path.join(prismaDir, "migrations", "schema.snapshot.prisma"), "utf8")).toBe(snapshot);
  });

  it("writes a migration for a schema change and updates the snapshot; it deploys", async () => {
    const prismaDir = prismaCopy();
    const schemaPath = path.join(prismaDir, "schema.prisma");
    const schema = readFileSync(schemaPath, "utf8").replace(
      "model GatewayNode {",
      "model GatewayNode {\n  region          String?",
    );
    writeFileSync(schemaPath, schema);

    const r = await diffMigration("Add node region!", { prismaDir });
    expect(r.migrationDir).toMatch(/\d{14}_add_node_region$/);
    expect(r.sql).toContain('ALTER TABLE "GatewayNode" ADD COLUMN     "region" TEXT');
    expect(readFileSync(path.join(r.migrationDir ?? "", "migration.sql"), "utf8")).toBe(`${r.sql}\n`);
    expect(readFileSync(path.join(prismaDir, "migrations", "schema.snapshot.prisma"), "utf8")).toBe(schema);
    expect(await diffMigration("again", { prismaDir })).toEqual({ migrationDir: null, sql: "" });

    const url = await freshDatabase();
    const { applied } = await applyMigrations(url, { prismaDir });
    expect(applied).toEqual([...localMigrations, path.basename(r.migrationDir ?? "")]);
    expect(await query(url, 'SELECT "region" FROM "GatewayNode"')).toEqual([]);
  });

  it("from an empty folder, writes the whole schema, the snapshot and the lock file", async () => {
    const prismaDir = tmp("fresh");
    const schema = readFileSync(path.join(packageRoot, "prisma", "schema.prisma"), "utf8");
    writeFileSync(path.join(prismaDir, "schema.prisma"), schema);
    const r = await diffMigration("init", { prismaDir });
    expect(r.migrationDir).toMatch(/\d{14}_init$/);
    expect(r.sql).toMatch(/^-- CreateEnum/);
    expect(r.sql).toContain('CREATE TABLE "Tenant"');
    expect(r.sql).not.toContain("CREATE SCHEMA");
    const migrations = path.join(prismaDir, "migrations");
    expect(readFileSync(path.join(migrations, "schema.snapshot.prisma"), "utf8")).toBe(schema);
    expect(readFileSync(path.join(migrations, "migration_lock.toml"), "utf8")).toContain(
      'provider = "postgresql"',
    );
  });

  it("refuses to diff from nothing when migrations exist but the snapshot is missing", async () => {
    const prismaDir = prismaCopy();
    rmSync(path.join(prismaDir, "migrations", "schema.snapshot.prisma"));
    await expect(diffMigration("x", { prismaDir })).rejects.toThrow(/schema\.snapshot\.prisma is missing/);
  });

  it("rejects a name without letters or digits", async () => {
    await expect(diffMigration(" -- ")).rejects.toThrow(/no letters or digits/);
  });
});

describe("cli (built dist/cli.js)", () => {
  const cli = path.join(packageRoot, "dist", "cli.js");
  const run = promisify(execFile);

  it("deploys from two processes started at once against one fresh database, then reports up to date", async () => {
    expect(existsSync(cli), "run `npm run build -w @gatehouse/db` first").toBe(true);
    const url = await freshDatabase();
    const env = { ...process.env, DATABASE_URL: url };
    const outs = await Promise.all([
      run("node", [cli, "deploy"], { env }),
      run("node", [cli, "deploy"], { env }),
    ]);
    const text = outs.map((o) => o.stdout).join("\n");
    expect(text.match(/applied \d+ migration/g)).toHaveLength(1);
    expect(text).toContain("no pending migrations");
    expect(text).not.toContain(new URL(url).username ? "postgres@" : "\u0000"); // the URL is never printed
    const status = await run("node", [cli, "status"], { env });
    expect(status.stdout).toContain("Database schema is up to date.");
    const rows = await query(url, 'SELECT 1 FROM "_prisma_migrations"');
    expect(rows).toHaveLength(localMigrations.length);
  });

  it("uses the PGlite under DATA_DIR when DATABASE_URL is unset; status exits 1 while migrations are pending", async () => {
    expect(existsSync(cli), "run `npm run build -w @gatehouse/db` first").toBe(true);
    const dataDir = tmp("cli");
    const env = { ...process.env, DATABASE_URL: "", DATA_DIR: dataDir };
    await expect(run("node", [cli, "status"], { env })).rejects.toMatchObject({ code: 1 });
    const deploy = await run("node", [cli, "deploy"], { env });
    expect(deploy.stdout).toContain(`PGlite ${path.join(dataDir, "pglite")}: applied`);
    const status = await run("node", [cli, "status"], { env });
    expect(status.stdout).toContain("Database schema is up to date.");
  });
});
