export { type CreateDbOptions, createDb, type Db } from "./client.js";
export * from "./generated/prisma/client.js";
export {
  applyMigrations,
  type DiffResult,
  diffMigration,
  type MigrateOptions,
  type MigrationStatus,
  type MigrationTarget,
  migrationStatus,
} from "./migrate.js";
