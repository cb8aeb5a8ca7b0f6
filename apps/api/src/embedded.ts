// `npm start`: everything in one process on embedded defaults. Without DATABASE_URL the database is
// PGlite under DATA_DIR; without REDIS_URL the bus is in-process. PGlite belongs to one process, so
// the gateway (and later the workers) run here too, sharing the database and the bus.
// It listens on 127.0.0.1 unless HOST (or API_HOST / GATEWAY_HOST) says otherwise: a first try on a
// laptop must not put the admin API on the local network.
import { randomBytes } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { createDb } from "@gatehouse/db";
import { type GatewayConfig, loadGatewayConfig, startGatewayNode } from "@gatehouse/gateway";
import { type Bus, InProcessBus } from "@gatehouse/shared";
import { generateAdminToken, generateSecretsKey, RedisBus } from "@gatehouse/shared/node";
import type { NestFastifyApplication } from "@nestjs/platform-fastify";
import { z } from "zod";
import { createApiApp } from "./app.js";
import { createLogger } from "./common/logger.js";
import { type ApiConfig, type ApiEnv, ConfigError, parseApiEnv } from "./config/api.config.js";
import { startConsoleProcess } from "./console-process.js";

const SecretsFileSchema = z.object({ ADMIN_TOKEN: z.string().min(16), SECRETS_KEY: z.string().min(1) });
type SecretsFile = z.infer<typeof SecretsFileSchema>;

export interface EmbeddedSecrets {
  ADMIN_TOKEN: string;
  SECRETS_KEY: string;
  /** Where they are kept. */
  file: string;
  /** The ones this start generated (the only time they are printed); empty after the first start. */
  generated: Array<"ADMIN_TOKEN" | "SECRETS_KEY">;
}

/**
 * `${dataDir}/secrets.json` (mode 0600): created with fresh secrets on first start, read afterwards.
 * Variables set in the environment win over the file.
 */
export async function loadOrCreateSecrets(env: ApiEnv): Promise<EmbeddedSecrets> {
  const dir = resolve(env.DATA_DIR);
  const file = join(dir, "secrets.json");
  let stored: SecretsFile | undefined;
  try {
    stored = SecretsFileSchema.parse(JSON.parse(await readFile(file, "utf8")));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new ConfigError(
        `${file} is unreadable or malformed; fix or remove it (removing it makes sealed secrets unreadable)`,
      );
    }
  }
  if (stored) return { ...stored, ...pickDefined(env), file, generated: [] };

  const fresh: SecretsFile = { ADMIN_TOKEN: generateAdminToken().key, SECRETS_KEY: generateSecretsKey() };
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${file}.${randomBytes(4).toString("hex")}.tmp`;
  await writeFile(tmp, `${JSON.stringify({ ...fresh, createdAt: new Date().toISOString() }, null, 2)}\n`, {
    mode: 0o600,
    flag: "wx",
  });
  await rename(tmp, file);
  const generated = (["ADMIN_TOKEN", "SECRETS_KEY"] as const).filter((k) => !env[k]);
  return { ...fresh, ...pickDefined(env), file, generated };
}

function pickDefined(env: ApiEnv): Partial<SecretsFile> {
  return {
    ...(env.ADMIN_TOKEN ? { ADMIN_TOKEN: env.ADMIN_TOKEN } : {}),
    ...(env.SECRETS_KEY ? { SECRETS_KEY: env.SECRETS_KEY } : {}),
  };
}

/** What only the embedded entry reads; the apps' own schemas read the rest. */
const EmbeddedEnvSchema = z.object({
  HOST: z.preprocess((v) => (v === "" ? undefined : v), z.string().default("127.0.0.1")),
});

/**
 * The environment the API and the gateway see in embedded mode: their hosts default to `HOST`
 * (loopback unless set), while API_HOST and GATEWAY_HOST still win when given.
 */
export function embeddedEnv(
  processEnv: Record<string, string | undefined>,
): Record<string, string | undefined> {
  const parsed = EmbeddedEnvSchema.safeParse(processEnv);
  if (!parsed.success) throw new ConfigError("Invalid environment:\n  HOST: Must be a host name or address");
  const { HOST } = parsed.data;
  const web = webEnv(processEnv);
  const webShown = web.host === "0.0.0.0" || web.host === "::" ? "localhost" : web.host;
  return {
    ...processEnv,
    API_HOST: processEnv.API_HOST || HOST,
    GATEWAY_HOST: processEnv.GATEWAY_HOST || HOST,
    // The console's OIDC redirect URI and cookies must name the address the browser uses.
    CONSOLE_PUBLIC_URL:
      processEnv.CONSOLE_PUBLIC_URL || (web.port ? `http://${webShown}:${web.port}` : undefined),
  };
}

const WebEnvSchema = z.object({
  WEB_PORT: z.preprocess(
    (v) => (v === "" ? undefined : v),
    z
      .union([z.literal("off"), z.coerce.number().int().min(0).max(65535)])
      .default(3000)
      .transform((v) => (v === "off" ? null : v)),
  ),
});

/** Where `npm start` serves the console: WEB_PORT (3000; 0 any free port; off none) on WEB_HOST (default HOST). */
export function webEnv(processEnv: Record<string, string | undefined>): {
  port: number | null;
  host: string;
} {
  const parsed = WebEnvSchema.safeParse(processEnv);
  if (!parsed.success)
    throw new ConfigError("Invalid environment:\n  WEB_PORT: Must be a port number or off");
  return { port: parsed.data.WEB_PORT, host: processEnv.WEB_HOST || processEnv.HOST || "127.0.0.1" };
}

export interface Embedded {
  api: NestFastifyApplication;
  apiUrl: string;
  gatewayUrl: string;
  config: ApiConfig;
  /** Where the data lives, as `npm start` says on the way out. */
  dataLocation: string;
  close(): Promise<void>;
}

/** Starts everything; `print` receives the banner (and, on first start only, the secrets). */
export async function startEmbedded(
  processEnv: Record<string, string | undefined>,
  print: (text: string) => void = (text) => process.stdout.write(text),
): Promise<Embedded> {
  processEnv = embeddedEnv(processEnv);
  const env = parseApiEnv(processEnv);
  const secrets = await loadOrCreateSecrets(env);
  const config: ApiConfig = {
    ...env,
    ADMIN_TOKEN: secrets.ADMIN_TOKEN,
    SECRETS_KEY: secrets.SECRETS_KEY,
    // First run: sign in to the console with the printed admin token, then configure OIDC.
    CONSOLE_BOOTSTRAP_SIGNIN: env.CONSOLE_BOOTSTRAP_SIGNIN ?? true,
  };
  const logger = createLogger(config.LOG_LEVEL);

  const closers: Array<() => Promise<void>> = [];
  // Every step runs even when one fails; the count says whether the stop was clean.
  const closeAll = async (): Promise<number> => {
    let failed = 0;
    for (const close of closers.splice(0).reverse())
      await close().catch((err: unknown) => {
        failed++;
        logger.error({ err }, "shutdown step failed");
      });
    return failed;
  };
  const close = async () => {
    const failed = await closeAll();
    if (failed > 0) throw new Error(`${failed} shutdown step(s) failed; the log above has them`);
  };
  try {
    const db = await createDb({ databaseUrl: config.DATABASE_URL, dataDir: config.DATA_DIR });
    closers.push(() => db.close());
    const bus: Bus = config.REDIS_URL
      ? new RedisBus({ url: config.REDIS_URL, keyPrefix: config.REDIS_KEY_PREFIX })
      : new InProcessBus();
    closers.push(() => bus.close());

    const api = await createApiApp(config, { db, bus, logger });
    closers.push(() => api.close());
    await api.listen(config.API_PORT, config.API_HOST);
    const apiUrl = localUrl(api.getHttpServer().address(), config.API_HOST);

    // ─── GATEWAY: start it here, in this process, on the same `db` and `bus` ───────────────
    // The same node as `start:gateway` (core + ops); its own variables (GATEWAY_PORT, …) are read
    // by the gateway's config. It closes before the bus and the database (closers run reversed).
    let gatewayEnv: GatewayConfig;
    try {
      // Reconnect links the gateway hands out point at this API unless PUBLIC_API_URL says otherwise.
      gatewayEnv = loadGatewayConfig({
        ...processEnv,
        SECRETS_KEY: config.SECRETS_KEY,
        PUBLIC_API_URL: processEnv.PUBLIC_API_URL || apiUrl,
      });
    } catch (err) {
      throw new ConfigError((err as Error).message);
    }
    const gateway = await startGatewayNode({
      config: gatewayEnv,
      db,
      bus,
      logger: logger.child({ component: "gateway", node: gatewayEnv.nodeId }),
    });
    closers.push(() => gateway.close());
    const gatewayUrl = localUrl(gateway.gateway.server.address(), gatewayEnv.host);
    // ──────────────────────────────────────────────────────────────────────────────────────

    // ─── CONSOLE: apps/web as a child process on WEB_PORT / WEB_HOST (default HOST), talking to
    // this API. WEB_PORT=off leaves it out; a console that cannot start is said in the banner.
    let consoleUrl: string | undefined;
    let consoleNote: string | undefined;
    const web = webEnv(processEnv);
    if (web.port === null) consoleNote = "off (WEB_PORT=off)";
    else {
      try {
        const started = await startConsoleProcess({
          host: web.host,
          port: web.port,
          apiUrl,
          env: processEnv,
          log: (line) => logger.debug({ component: "web" }, line),
        });
        closers.push(() => started.close());
        consoleUrl = started.url;
      } catch (err) {
        consoleNote = `not started: ${(err as Error).message}`;
      }
    }

    const dataDir = resolve(config.DATA_DIR);
    print(
      banner({
        apiUrl,
        gatewayUrl,
        database:
          db.kind === "pglite" ? `embedded PGlite in ${join(dataDir, "pglite")}` : "Postgres (DATABASE_URL)",
        bus: config.REDIS_URL ? "Redis (REDIS_URL)" : "in-process",
        secrets,
        hosts: [config.API_HOST, gatewayEnv.host],
        ...(consoleUrl ? { consoleUrl } : {}),
        ...(consoleNote ? { consoleNote } : {}),
      }),
    );
    const dataLocation =
      db.kind === "pglite"
        ? `${dataDir} (PGlite database and secrets.json)`
        : `Postgres (DATABASE_URL); secrets in ${secrets.file}`;
    return { api, apiUrl, gatewayUrl, config, dataLocation, close };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

function localUrl(address: ReturnType<import("node:net").Server["address"]>, host: string): string {
  const port = typeof address === "object" && address ? address.port : 0;
  const shown = host === "0.0.0.0" || host === "::" ? "localhost" : host;
  return `http://${shown}:${port}`;
}

function banner(o: {
  apiUrl: string;
  gatewayUrl: string;
  database: string;
  bus: string;
  secrets: EmbeddedSecrets;
  /** The hosts the listeners are bound to. */
  hosts: string[];
  /** The console's URL when `npm start` runs it. */
  consoleUrl?: string;
  /** Why the console is not running. */
  consoleNote?: string;
}): string {
  const lines = [
    "",
    "Gatehouse is running (embedded mode)",
    `  REST API   ${o.apiUrl}/v1   (OpenAPI: ${o.apiUrl}/docs)`,
    ...(o.consoleUrl ? [`  Console    ${o.consoleUrl}   (sign in with the ADMIN_TOKEN)`] : []),
    ...(o.consoleNote ? [`  Console    ${o.consoleNote}`] : []),
    `  Gateway    ${o.gatewayUrl}/t/{tenant}/mcp`,
    `  Database   ${o.database}`,
    `  Bus        ${o.bus}`,
    `  Secrets    ${o.secrets.file}`,
    o.hosts.every(isLoopback)
      ? "  Listening on loopback only; HOST=0.0.0.0 npm start accepts other machines too."
      : `  Listening on ${[...new Set(o.hosts)].join(", ")}: reachable from other machines.`,
  ];
  if (o.secrets.generated.length > 0) {
    lines.push("", "First start: generated and saved (mode 0600) to the file above. Shown this once:");
    for (const name of o.secrets.generated) lines.push(`  ${name}=${o.secrets[name]}`);
    lines.push(
      "  Use the admin token as `Authorization: Bearer <ADMIN_TOKEN>`. Back up SECRETS_KEY: without it sealed secrets are lost.",
    );
  }
  return `${lines.join("\n")}\n\n`;
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}

async function main(): Promise<void> {
  const embedded = await startEmbedded(process.env);
  let stopping = false;
  const stop = (signal: NodeJS.Signals | "uncaughtException", code = 0) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`\n${signal}: stopping Gatehouse…\n`);
    embedded.close().then(
      () => {
        process.stdout.write(
          `Gatehouse stopped cleanly. Data is kept in ${embedded.dataLocation}; \`npm start\` continues from it.\n`,
        );
        process.exit(code);
      },
      (err: unknown) => {
        process.stderr.write(`Gatehouse stopped with an error: ${(err as Error)?.message ?? String(err)}\n`);
        process.exit(1);
      },
    );
  };
  // Not `once(sig, stop)`: a signal listener's second argument is the signal number, which would
  // become the exit code (SIGTERM → 15).
  process.once("SIGINT", () => stop("SIGINT"));
  process.once("SIGTERM", () => stop("SIGTERM"));
  // Last resort: an error nothing caught is logged, the process drains and exits 1 (its state is
  // unknown); a stray rejection is logged and the process goes on.
  process.on("uncaughtException", (err) => {
    process.stderr.write(`uncaught exception, shutting down: ${err?.stack ?? String(err)}\n`);
    stop("uncaughtException", 1);
  });
  process.on("unhandledRejection", (err) => {
    process.stderr.write(`unhandled rejection: ${(err as Error)?.stack ?? String(err)}\n`);
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((err: unknown) => {
    process.stderr.write(
      `${err instanceof ConfigError ? err.message : ((err as Error)?.stack ?? String(err))}\n`,
    );
    process.exit(1);
  });
}
