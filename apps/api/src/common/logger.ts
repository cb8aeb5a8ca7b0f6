import type { LoggerService } from "@nestjs/common";
import { type DestinationStream, type Logger, pino } from "pino";

/**
 * Paths pino censors wherever they appear. Requests are logged through `serializers.req`, which
 * keeps no headers at all; these paths are the second line of defence for anything logged by hand.
 */
const REDACT = [
  "authorization",
  "*.authorization",
  "headers.authorization",
  "req.headers.authorization",
  "req.headers.cookie",
  'req.headers["x-api-key"]',
  "token",
  "*.token",
  "key",
  "*.key",
  "secret",
  "*.secret",
  "password",
  "*.password",
  "value",
  "auth.*",
  "headers",
  "env",
  "ADMIN_TOKEN",
  "SECRETS_KEY",
  "*.ADMIN_TOKEN",
  "*.SECRETS_KEY",
];

/**
 * A request URL with every query value replaced: query strings carry connect tickets, OAuth codes
 * and state, which are credentials for as long as they live. Parameter names stay for debugging.
 */
export function redactQuery(url: string): string {
  const q = url.indexOf("?");
  if (q < 0) return url;
  const names = url
    .slice(q + 1)
    .split("&")
    .filter(Boolean)
    .map((pair) => `${pair.split("=")[0]}=[redacted]`);
  return `${url.slice(0, q)}?${names.join("&")}`;
}

/** The API's logger; `destination` defaults to stdout (tests pass their own to read what is logged). */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: "gatehouse-api" },
    redact: { paths: REDACT, censor: "[redacted]" },
    serializers: {
      // Method, path and id only: never headers (Authorization), never bodies (secrets).
      req: (req: { id?: string; method?: string; url?: string }) => ({
        id: req.id,
        method: req.method,
        url: req.url === undefined ? undefined : redactQuery(req.url),
      }),
      res: (res: { statusCode?: number }) => ({ statusCode: res.statusCode }),
    },
  };
  return destination ? pino(options, destination) : pino(options);
}

const BOOT_CONTEXTS = new Set(["InstanceLoader", "RoutesResolver", "RouterExplorer"]);

/** Nest's own log lines (bootstrap, route mapping, errors) through the same pino logger. */
export class NestPinoLogger implements LoggerService {
  constructor(private readonly logger: Logger) {}

  log(message: unknown, context?: string): void {
    // Nest's boot chatter (a line per module and per route) is for debugging, not for operators.
    const level = context && BOOT_CONTEXTS.has(context) ? "debug" : "info";
    this.logger[level]({ context }, String(message));
  }
  error(message: unknown, stack?: string, context?: string): void {
    this.logger.error({ context, stack }, String(message));
  }
  warn(message: unknown, context?: string): void {
    this.logger.warn({ context }, String(message));
  }
  debug(message: unknown, context?: string): void {
    this.logger.debug({ context }, String(message));
  }
  verbose(message: unknown, context?: string): void {
    this.logger.trace({ context }, String(message));
  }
  fatal(message: unknown, context?: string): void {
    this.logger.fatal({ context }, String(message));
  }
}
