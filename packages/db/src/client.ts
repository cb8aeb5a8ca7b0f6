import { mkdirSync } from "node:fs";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaPGlite } from "pglite-prisma-adapter";
import { PrismaClient } from "./generated/prisma/client.js";
import { applyMigrations, isPostgresUrl } from "./migrate.js";

export interface CreateDbOptions {
  /** postgres:// or postgresql:// selects Postgres; unset or empty, the embedded PGlite. */
  databaseUrl?: string;
  /** PGlite lives in `${dataDir}/pglite` (default dataDir: "./.data", relative to the working directory). */
  dataDir?: string;
  /** Apply pending migrations before returning (default: true for PGlite, false for Postgres). */
  migrate?: boolean;
  /** Postgres connection pool size (pg default: 10). */
  poolSize?: number;
}

export interface Db {
  prisma: PrismaClient;
  kind: "postgres" | "pglite";
  /** Disconnects Prisma and, for PGlite, closes the database. Safe to call twice. */
  close(): Promise<void>;
}

// A PGlite data directory must be opened by one PGlite at a time.
const openPGliteDirs = new Set<string>();

/** Open the database: Postgres through adapter-pg, or PGlite persisted on disk. */
export async function createDb(opts: CreateDbOptions = {}): Promise<Db> {
  const url = opts.databaseUrl?.trim();
  if (url) {
    if (!isPostgresUrl(url)) {
      throw new Error(
        "DATABASE_URL must start with postgres:// or postgresql://; leave it unset to use the embedded PGlite under ./.data.",
      );
    }
    if (opts.migrate ?? false) await applyMigrations(url);
    const adapter = new PrismaPg({
      connectionString: url,
      ...(opts.poolSize !== undefined ? { max: opts.poolSize } : {}),
    });
    const prisma = new PrismaClient({ adapter });
    return { prisma, kind: "postgres", close: once(() => prisma.$disconnect()) };
  }

  const dir = path.resolve(opts.dataDir ?? "./.data", "pglite");
  if (openPGliteDirs.has(dir)) {
    throw new Error(
      `PGlite at ${dir} is already open in this process; share one Db instead of opening it twice.`,
    );
  }
  openPGliteDirs.add(dir);
  let pglite: PGlite | undefined;
  try {
    mkdirSync(dir, { recursive: true });
    pglite = await PGlite.create(dir);
    if (opts.migrate ?? true) await applyMigrations({ pglite });
  } catch (e) {
    await pglite?.close().catch(() => {});
    openPGliteDirs.delete(dir);
    throw e;
  }
  const db = pglite;
  const prisma = new PrismaClient({ adapter: new PrismaPGlite(db) });
  return {
    prisma,
    kind: "pglite",
    close: once(async () => {
      try {
        await prisma.$disconnect();
        await db.close();
      } finally {
        openPGliteDirs.delete(dir);
      }
    }),
  };
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | undefined;
  return () => {
    p ??= fn();
    return p;
  };
}
