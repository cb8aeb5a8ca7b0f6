export { type CreateDbOptions, createDb, type Db } from "./client.js";
export {
  type GatewayNodeDb,
  type GatewayNodeInfo,
  listLiveNodes,
  NODE_STALE_AFTER_MS,
  pruneDeadNodes,
} from "./gateway-nodes.repository.js";
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
