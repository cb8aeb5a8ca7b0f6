// A gateway node from the environment: `npm run start:gateway`.
import { createDb } from "@gatehouse/db";
import { type Bus, InProcessBus } from "@gatehouse/shared";
import { RedisBus } from "@gatehouse/shared/node";
import { pino } from "pino";
import { ConfigError, loadGatewayConfig } from "./config/gateway.config.js";
import { createGateway } from "./gateway.js";
import { RedisSessionStore, type SessionStore } from "./sessions/session-store.js";

async function main(): Promise<void> {
  const config = loadGatewayConfig();
  const logger = pino({ level: config.logLevel, base: { node: config.nodeId } });
  const db = await createDb({ ...(config.databaseUrl ? { databaseUrl: config.databaseUrl } : {}) });
  let bus: Bus;
  let sessions: SessionStore | undefined;
  if (config.redisUrl) {
    bus = new RedisBus({ url: config.redisUrl, keyPrefix: config.redisKeyPrefix });
    sessions = new RedisSessionStore({
      url: config.redisUrl,
      keyPrefix: config.redisKeyPrefix,
      ttlSeconds: config.sessionTtlSeconds,
    });
  } else {
    logger.warn("REDIS_URL is unset: in-process bus and in-memory sessions (one node only)");
    bus = new InProcessBus();
  }
  // Last line of defence: a stray rejection is logged, never allowed to take the node down.
  process.on("unhandledRejection", (err) => logger.error({ err }, "unhandled rejection"));
  const gateway = await createGateway({ config, db, bus, logger, ...(sessions ? { sessions } : {}) });
  await gateway.listen();
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down");
    const hard = setTimeout(() => process.exit(1), 15_000);
    hard.unref();
    try {
      await gateway.close();
      await sessions?.close();
      await bus.close();
      await db.close();
    } finally {
      process.exit(0);
    }
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) console.error(err.message);
  else console.error(err);
  process.exit(1);
});
