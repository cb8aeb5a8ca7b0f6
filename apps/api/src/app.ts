import "reflect-metadata";
import { randomUUID } from "node:crypto";
import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import { createDb, type Db } from "@gatehouse/db";
import { type Bus, ErrorCode, InProcessBus } from "@gatehouse/shared";
import { createSealer, RedisBus } from "@gatehouse/shared/node";
import { NestFactory } from "@nestjs/core";
import { FastifyAdapter, type NestFastifyApplication } from "@nestjs/platform-fastify";
import { SwaggerModule } from "@nestjs/swagger";
import type { FastifyReply, FastifyRequest } from "fastify";
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
      // HTTP the parser cannot take (a bad method, header or framing): the problem body, then the
      // connection closes.
      clientErrorHandler: (err: NodeJS.ErrnoException, socket: Socket) => {
        if (!socket.writable || err.code === "ECONNRESET") {
          socket.destroy();
          return;
        }
        const status =
          err.code === "HPE_HEADER_OVERFLOW" ? 431 : err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : 400;
        const body = JSON.stringify({
          error: {
            code: ErrorCode.INVALID_REQUEST,
            message: `Malformed HTTP request (${err.code ?? "parse error"}); send a well-formed HTTP/1.1 request`,
          },
        });
        socket.end(
          `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
        );
      },
      // What Fastify refuses before routing (a path that is not valid percent-encoding) gets the
      // same problem body as every other error, not Fastify's own shape.
      frameworkErrors: (error: Error, _request: FastifyRequest, reply: FastifyReply) => {
        void reply
          .status(400)
          .header("content-type", "application/json; charset=utf-8")
          .send({
            error: {
              code: ErrorCode.INVALID_REQUEST,
              message: `${error.message}; percent-encode the path`,
            },
          });
      },
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
