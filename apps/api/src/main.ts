// `npm run start:api`: the REST API alone, against Postgres (DATABASE_URL) and, when REDIS_URL is
// set, the Redis bus that gateway nodes listen on. Pending migrations are applied first unless
// DB_MIGRATE_ON_START=false (then run `npm run db:migrate` yourself).
import { applyMigrations } from "@gatehouse/db";
import type { Logger } from "pino";
import { createApiApp } from "./app.js";
import { createLogger } from "./common/logger.js";
import { LOGGER } from "./common/tokens.js";
import { ConfigError, parseApiEnv, requireSecrets } from "./config/api.config.js";

async function main(): Promise<void> {
  const config = requireSecrets(parseApiEnv(process.env));
  if (!config.DATABASE_URL) {
    throw new ConfigError(
      "Invalid environment:\n  DATABASE_URL: Required for the API alone (the embedded database belongs to one process; `npm start` runs everything on it)",
    );
  }
  const logger = createLogger(config.LOG_LEVEL);
  if (config.DB_MIGRATE_ON_START) {
    // Safe with many API processes starting at once: packages/db takes an advisory lock.
    const { applied } = await applyMigrations(config.DATABASE_URL);
    logger.info(
      { applied },
      applied.length > 0 ? "database migrations applied" : "database schema up to date",
    );
  }
  const app = await createApiApp(config, { logger });
  app.enableShutdownHooks();
  await app.listen(config.API_PORT, config.API_HOST);
  app
    .get<symbol, Logger>(LOGGER)
    .info(
      { port: config.API_PORT, host: config.API_HOST, bus: config.REDIS_URL ? "redis" : "in-process" },
      "API listening",
    );
}

main().catch((err: unknown) => {
  process.stderr.write(
    `${err instanceof ConfigError ? err.message : ((err as Error)?.stack ?? String(err))}\n`,
  );
  process.exit(1);
});
