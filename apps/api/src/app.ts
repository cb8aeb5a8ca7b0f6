import "reflect-metadata";
import { randomUUID } from "node:crypto";
import { createDb, type Db } from "@gatehouse/db";
import { type Bus, InProcessBus } from "@gatehouse/shared";
import { createSealer, RedisBus } from "@gatehouse/shared/node";
import { NestFactory } from "@nestjs/core";
import { FastifyAdapter, type NestFastifyApplication } from "@nestjs/platform-fastify";
import { SwaggerModule } from "@nestjs/swagger";
import type { Logger } from "pino";
import { appModule } from "./app.module.js";
import { requireJsonBodies } from "./common/json-body.js";
import { createLogger, NestPinoLogger } from "./common/logger.js";
import { buildOpenApiDocument } from "./common/openapi.js";
import { ProblemFilter } from "./common/problem.filter.js";
import type { ApiConfig } from "./config/api.config.js";
import { createMetrics, instrumentHttp } from "./health/metrics.js";

export interface ApiDeps {
  /** Shared with the gateway in embedded mode. Not closed by the app when passed in. */
  db?: Db;
  /** Shared with the gateway in embedded mode. Not closed by the app when passed in. */
  bus?: Bus;
  logger?: Logger;
}

const BODY_LIMIT_BYTES = 1024 * 1024;

/**
 * The REST API as a Nest application, initialised but not listening: `await app.listen(port, host)`,
 * or drive it with `app.getHttpAdapter().getInstance().inject(…)`. What it creates itself (database,
 * bus) it closes on `app.close()`; what is passed in stays the caller's.
 */
export async function createApiApp(config: ApiConfig, deps: ApiDeps = {}): Promise<NestFastifyApplication> {
  const logger = deps.logger ?? createLogger(config.LOG_LEVEL);
  const owned: Array<() => Promise<void>> = [];
  const own = <T extends { close(): Promise<void> }>(resource: T): T => {
    owned.push(() => resource.close());
    return resource;
  };
  try {
    const db = deps.db ?? own(await createDb({ databaseUrl: config.DATABASE_URL, dataDir: config.DATA_DIR }));
    const bus =
      deps.bus ??
      own(
        config.REDIS_URL
          ? new RedisBus({ url: config.REDIS_URL, keyPrefix: config.REDIS_KEY_PREFIX })
          : new InProcessBus(),
      );
    const metrics = createMetrics();
    const adapter = new FastifyAdapter({
      loggerInstance: logger,
      bodyLimit: BODY_LIMIT_BYTES,
      genReqId: () => randomUUID(),
    });
    const app = await NestFactory.create<NestFastifyApplication>(
      appModule({
        config,
        db,
        bus,
        sealer: createSealer(config.SECRETS_KEY),
        logger,
        metrics,
        owned,
      }),
      adapter,
      { logger: new NestPinoLogger(logger), abortOnError: false },
    );
    app.useGlobalFilters(new ProblemFilter(logger));
    instrumentHttp(app.getHttpAdapter().getInstance(), metrics);
    requireJsonBodies(app.getHttpAdapter().getInstance());
    SwaggerModule.setup("docs", app, () => buildOpenApiDocument(app), { jsonDocumentUrl: "docs-json" });
    await app.init();
    return app;
  } catch (err) {
    for (const close of owned.reverse()) await close().catch(() => {});
    throw err;
  }
}
