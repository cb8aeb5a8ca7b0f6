// `npm run start:worker`: the background workers (distributed mode): upstream OAuth token
// refresh, tool discovery and health probes, on BullMQ. Same code and config as the API; scale it
// separately. Without REDIS_URL there is nothing to do here: `npm start` runs the jobs in-process.
import "reflect-metadata";
import { randomBytes } from "node:crypto";
import http from "node:http";
import { pathToFileURL } from "node:url";
import { createDb, type Db } from "@gatehouse/db";
import type { Bus } from "@gatehouse/shared";
import { createSealer, RedisBus } from "@gatehouse/shared/node";
import { type DynamicModule, type INestApplicationContext, Module } from "@nestjs/common";
import { NestFactory } from "@nestjs/core";
import type { Logger } from "pino";
import { type CoreDeps, coreModule } from "./common/core.module.js";
import { createLogger, NestPinoLogger } from "./common/logger.js";
import { type ApiConfig, ConfigError, parseApiEnv } from "./config/api.config.js";
import { createMetrics } from "./health/metrics.js";
import { oauthSettings } from "./oauth/oauth.config.js";
import { OAuthModule } from "./oauth/oauth.module.js";
import { OAuthWorkers } from "./oauth/oauth.workers.js";

@Module({})
class WorkerModule {
  static forRoot(deps: CoreDeps): DynamicModule {
    return { module: WorkerModule, imports: [coreModule(deps), OAuthModule] };
  }
}

export interface WorkerDeps {
  /** Not closed by the worker when passed in. */
  db?: Db;
  /** Not closed by the worker when passed in. */
  bus?: Bus;
  logger?: Logger;
  /** Period of the reconcile sweep (default one minute); tests shorten it. */
  reconcileEveryMs?: number;
}

export interface Worker {
  app: INestApplicationContext;
  /** Serves /healthz and /metrics when WORKER_PORT is set. */
  port: number | null;
  close(): Promise<void>;
}

/** Starts the workers of one process on BullMQ (config.REDIS_URL required). */
export async function createWorker(config: ApiConfig, deps: WorkerDeps = {}): Promise<Worker> {
  if (!config.REDIS_URL) {
    throw new ConfigError(
      "Invalid environment:\n  REDIS_URL: Required for the worker (without Redis, `npm start` runs the jobs in-process)",
    );
  }
  const logger = (deps.logger ?? createLogger(config.LOG_LEVEL)).child({ role: "worker" });
  const owned: Array<() => Promise<void>> = [];
  try {
    const db = deps.db ?? (await createDb({ databaseUrl: config.DATABASE_URL, dataDir: config.DATA_DIR }));
    if (!deps.db) owned.push(() => db.close());
    const bus = deps.bus ?? new RedisBus({ url: config.REDIS_URL, keyPrefix: config.REDIS_KEY_PREFIX });
    if (!deps.bus) owned.push(() => bus.close());
    const metrics = createMetrics();
    const app = await NestFactory.createApplicationContext(
      WorkerModule.forRoot({
        config,
        db,
        bus,
        sealer: createSealer(config.SECRETS_KEY),
        logger,
        metrics,
        owned,
      }),
      { logger: new NestPinoLogger(logger), abortOnError: false },
    );
    await app.get(OAuthWorkers).start({ reconcileEveryMs: deps.reconcileEveryMs });

    let server: http.Server | null = null;
    const { workerPort } = oauthSettings(config as unknown as Record<string, unknown>);
    if (workerPort !== undefined) {
      server = http.createServer((req, res) => {
        if (req.url === "/healthz") {
          res.writeHead(200, { "content-type": "application/json" }).end('{"status":"ok"}');
        } else if (req.url === "/metrics") {
          metrics.metrics().then(
            (text) => res.writeHead(200, { "content-type": metrics.contentType }).end(text),
            () => res.writeHead(500).end(),
          );
        } else {
          res.writeHead(404).end();
        }
      });
      await new Promise<void>((resolve) => server!.listen(workerPort, config.API_HOST, resolve));
    }
    const address = server?.address();
    return {
      app,
      port: address && typeof address === "object" ? address.port : null,
      close: async () => {
        if (server) await new Promise<void>((resolve) => server!.close(() => resolve()));
        // Closes the job runner (JobsModule) and what the worker opened itself (CoreModule).
        await app.close();
      },
    };
  } catch (err) {
    for (const close of owned.reverse()) await close().catch(() => {});
    throw err;
  }
}

async function main(): Promise<void> {
  const env = parseApiEnv(process.env);
  const missing = (["DATABASE_URL", "REDIS_URL", "SECRETS_KEY"] as const).filter((k) => !env[k]);
  if (missing.length) {
    throw new ConfigError(
      `Invalid environment:\n${missing.map((k) => `  ${k}: Required for the worker (embedded mode runs jobs inside \`npm start\`)`).join("\n")}`,
    );
  }
  // The worker serves no REST API: the admin token is never checked here.
  const config = { ...env, ADMIN_TOKEN: env.ADMIN_TOKEN ?? randomBytes(24).toString("hex") } as ApiConfig;
  const worker = await createWorker(config);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`worker: ${signal}, finishing running jobs\n`);
    worker.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  process.stdout.write(
    `worker started${worker.port !== null ? `; /healthz and /metrics on port ${worker.port}` : ""}\n`,
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().catch((err: unknown) => {
    process.stderr.write(
      `${err instanceof ConfigError ? err.message : ((err as Error)?.stack ?? String(err))}\n`,
    );
    process.exit(1);
  });
}
