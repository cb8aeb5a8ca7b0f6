// A gateway node from the environment: `npm run start:gateway`.
import { createDb } from "@gatehouse/db";
import { type Bus, InProcessBus } from "@gatehouse/shared";
import { RedisBus } from "@gatehouse/shared/node";
import { pino } from "pino";
import { ConfigError, loadGatewayConfig } from "./config/gateway.config.js";
import { startGatewayNode } from "./node.js";

async function main(): Promise<void> {
  const config = loadGatewayConfig();
  const logger = pino({ level: config.logLevel, base: { node: config.nodeId } });
  const db = await createDb({ ...(config.databaseUrl ? { databaseUrl: config.databaseUrl } : {}) });
  let bus: Bus;
  if (config.redisUrl) {
    bus = new RedisBus({ url: config.redisUrl, keyPrefix: config.redisKeyPrefix });
  } else {
    logger.warn("REDIS_URL is unset: in-process bus and in-memory sessions (one node only)");
    bus = new InProcessBus();
  }
  // Last line of defence: a stray rejection is logged, never allowed to take the node down.
  process.on("unhandledRejection", (err) => logger.error({ err }, "unhandled rejection"));
  const node = await startGatewayNode({ config, db, bus, logger });
  let stopping = false;
  // A thrown error nothing caught: the process state is unknown, so the node does not go on
  // serving; it logs why, drains what is in flight (bounded) and exits 1 for its supervisor.
  process.on("uncaughtException", (err) => {
    logger.fatal({ err }, "uncaught exception: draining, then exiting");
    void stop("uncaughtException", 1);
  });
  const stop = async (signal: string, exitCode = 0) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, drainTimeoutMs: config.drainTimeoutMs }, "shutting down: draining");
    // Drain + audit flush are bounded on their own; this is the backstop.
    const hard = setTimeout(() => process.exit(1), config.drainTimeoutMs + 20_000);
    hard.unref();
    let code = exitCode;
    try {
      await node.close();
      await bus.close();
      await db.close();
      logger.info("shut down cleanly");
    } catch (err) {
      logger.error({ err }, "error during shutdown");
      code = 1;
    } finally {
      process.exit(code);
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
