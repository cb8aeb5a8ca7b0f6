#!/usr/bin/env node
// gatehouse-db deploy | diff <name> | status
// DATABASE_URL=postgres://… selects Postgres; unset, the embedded PGlite under $DATA_DIR/pglite
// (default: <repo>/.data/pglite).
import path from "node:path";
import {
  applyMigrations,
  diffMigration,
  type MigrationTarget,
  migrationStatus,
  packageRoot,
} from "./migrate.js";

const usage = "usage: gatehouse-db deploy | diff <name> | status";

/** The engine logs JSON lines; show its warnings and errors, drop the chatter. */
function engineLog(line: string): void {
  try {
    const entry = JSON.parse(line) as { level?: string; fields?: { message?: string } };
    if (entry.level === "WARN" || entry.level === "ERROR")
      console.error(`${entry.level}: ${entry.fields?.message ?? line}`);
  } catch {}
}

function target(): { target: MigrationTarget; label: string } {
  const url = process.env.DATABASE_URL?.trim();
  if (url) {
    let label = "Postgres";
    try {
      const u = new URL(url);
      label = `Postgres ${u.hostname}:${u.port || 5432}${u.pathname}`; // never the credentials
    } catch {}
    return { target: url, label };
  }
  // npm runs workspace scripts in the package folder; resolve a relative DATA_DIR where the user typed it.
  const base = process.env.INIT_CWD ?? process.cwd();
  const dataDir = process.env.DATA_DIR
    ? path.resolve(base, process.env.DATA_DIR)
    : path.resolve(packageRoot, "..", "..", ".data");
  return { target: { dataDir }, label: `PGlite ${path.join(dataDir, "pglite")}` };
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case "deploy": {
      const t = target();
      const { applied } = await applyMigrations(t.target, { log: engineLog });
      console.log(
        applied.length
          ? `${t.label}: applied ${applied.length} migration(s):\n${applied.map((n) => `  ${n}`).join("\n")}`
          : `${t.label}: no pending migrations.`,
      );
      return 0;
    }
    case "diff": {
      const name = rest[0];
      if (!name) {
        console.error(`${usage}\n  diff needs a name, e.g. add_audit_index`);
        return 2;
      }
      const r = await diffMigration(name, { log: engineLog });
      console.log(
        r.migrationDir ? `Wrote ${path.relative(process.cwd(), r.migrationDir)}` : "No schema changes.",
      );
      return 0;
    }
    case "status": {
      const t = target();
      const s = await migrationStatus(t.target, { log: engineLog });
      console.log(`${t.label}: ${s.local.length} migration(s) in the folder.`);
      if (s.pending.length) console.log(`Not yet applied:\n${s.pending.map((n) => `  ${n}`).join("\n")}`);
      if (s.unknown.length)
        console.log(`Applied but missing from the folder:\n${s.unknown.map((n) => `  ${n}`).join("\n")}`);
      if (s.failed.length) console.log(`Failed:\n${s.failed.map((n) => `  ${n}`).join("\n")}`);
      if (s.edited.length)
        console.log(`Edited after being applied:\n${s.edited.map((n) => `  ${n}`).join("\n")}`);
      console.log(s.upToDate ? "Database schema is up to date." : "Database schema is NOT up to date.");
      return s.upToDate ? 0 : 1;
    }
    default:
      console.error(usage);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  },
);
