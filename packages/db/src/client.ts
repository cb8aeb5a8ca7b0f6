import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaPGlite } from "pglite-prisma-adapter";
import { PrismaClient } from "./generated/prisma/client.js";
import { applyMigrations, isPostgresUrl } from "./migrate.js";
import { openPGliteStore } from "./pglite-store.js";

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

  const store = await openPGliteStore(opts.dataDir ?? "./.data");
  try {
    if (opts.migrate ?? true) await applyMigrations({ pglite: store.pglite });
  } catch (e) {
    await store.close().catch(() => {});
    throw e;
  }
  const prisma = new PrismaClient({ adapter: new PrismaPGlite(store.pglite) });
  return {
    prisma,
    kind: "pglite",
    close: once(async () => {
      try {
        await prisma.$disconnect();
      } finally {
        await store.close();
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
