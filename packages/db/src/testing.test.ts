import pg from "pg";
import { expect, it } from "vitest";
import { migrationStatus } from "./migrate.js";
import { createTestDatabase } from "./testing.js";

const adminUrl = process.env.TEST_DATABASE_ADMIN_URL?.trim() || "postgres://postgres@127.0.0.1:5432/postgres";

async function databaseExists(name: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    return (await c.query("SELECT 1 FROM pg_database WHERE datname = $1", [name])).rowCount === 1;
  } finally {
    await c.end();
  }
}

it("creates a migrated gatehouse_test_* database and drops it even while connections are open", async () => {
  const db = await createTestDatabase();
  const name = new URL(db.url).pathname.slice(1);
  expect(name).toMatch(/^gatehouse_test_[0-9a-f]{12}$/);
  expect(await databaseExists(name)).toBe(true);
  expect(await migrationStatus(db.url)).toMatchObject({ upToDate: true });

  const open = new pg.Client({ connectionString: db.url });
  open.on("error", () => {}); // FORCE terminates it
  await open.connect();
  await db.drop();
  await db.drop();
  expect(await databaseExists(name)).toBe(false);
  await open.end().catch(() => {});
});
