import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { z } from "zod";

const bool = z
  .enum(["true", "false", "1", "0", "yes", "no"])
  .transform((v) => v === "true" || v === "1" || v === "yes");

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === "" ? undefined : v));

/** Every variable the gateway reads. This module is the only reader of `process.env`. */
export const GatewayEnvSchema = z.object({
  GATEWAY_PORT: int(0, 65535).default(8080),
  GATEWAY_HOST: z.string().min(1).default("0.0.0.0"),
  /**
   * Prometheus `/metrics` (and /healthz, /readyz) on a port of their own, never on the agent-facing
   * one: series are labelled by tenant, upstream and tool. 0 = any free port.
   */
  GATEWAY_METRICS_PORT: int(0, 65535).default(9464),
  /** Loopback by default: open it (e.g. 0.0.0.0) only where the scraper needs it. */
  GATEWAY_METRICS_HOST: z.string().min(1).default("127.0.0.1"),
  /** When set, scrapes must send `Authorization: Bearer <token>`. */
  GATEWAY_METRICS_TOKEN: optionalString,
  DATABASE_URL: optionalString,
  REDIS_URL: optionalString.pipe(z.string().url().optional()),
  REDIS_KEY_PREFIX: z.string().default("gatehouse:"),
  SECRETS_KEY: optionalString,
  PUBLIC_GATEWAY_URL: z.string().url().default("http://localhost:8080"),
  /** Public base URL of the REST API: "connect your account" links in upstream OAuth errors point there. */
  PUBLIC_API_URL: z.string().url().default("http://localhost:4000"),
  /** Extra Host header values accepted besides localhost and the public host (comma separated). */
  GATEWAY_ALLOWED_HOSTS: z.string().default(""),
  GATEWAY_ALLOW_STDIO: bool.default(false),
  /** Answer POSTed requests as SSE when the client accepts it (as the SDK servers do); false: JSON unless streaming. */
  GATEWAY_SSE_RESPONSES: bool.default(true),
  GATEWAY_NODE_ID: optionalString,
  GATEWAY_MAX_BODY_BYTES: int(1024, 64 * 1024 * 1024).default(4 * 1024 * 1024),
  /** Whole request (headers and body) must arrive within this; a trickling client gets 408. */
  GATEWAY_REQUEST_TIMEOUT_MS: int(1000, 3_600_000).default(30_000),
  /** Request headers must arrive within this (at most the request timeout). */
  GATEWAY_HEADERS_TIMEOUT_MS: int(1000, 3_600_000).default(20_000),
  /** Bytes an SSE stream may have queued for a slow reader before the gateway drops the stream. */
  GATEWAY_SSE_MAX_BUFFERED_BYTES: int(64 * 1024, 1024 * 1024 * 1024).default(8 * 1024 * 1024),
  /** Open 2026-07-28 `subscriptions/listen` streams per principal and tenant on one node (0 = no cap). */
  GATEWAY_MAX_LISTENERS_PER_PRINCIPAL: int(0, 100_000).default(10),
  /** How long an idle session is kept in the session store. */
  GATEWAY_SESSION_TTL_SECONDS: int(10, 7 * 24 * 3600).default(3600),
  /** Upper bound on establishing an upstream connection; past it the upstream counts as down. */
  GATEWAY_UPSTREAM_CONNECT_TIMEOUT_MS: int(100, 60_000).default(3000),
  /** Default per-upstream request timeout when the upstream sets none. */
  GATEWAY_UPSTREAM_TIMEOUT_MS: int(100, 3_600_000).default(60_000),
  /** Largest single message (a JSON body, an SSE event, a stdio line) an upstream may send. */
  GATEWAY_UPSTREAM_MAX_MESSAGE_BYTES: int(1024, 1024 * 1024 * 1024).default(16 * 1024 * 1024),
  /** Longest silence inside an upstream's answer once it started (0 = the upstream's request timeout). */
  GATEWAY_UPSTREAM_IDLE_TIMEOUT_MS: int(0, 3_600_000).default(0),
  /** After a failed connect, calls to that upstream fail fast for this long. */
  GATEWAY_UPSTREAM_RETRY_AFTER_MS: int(0, 600_000).default(2000),
  GATEWAY_STDIO_IDLE_TIMEOUT_MS: int(1000, 24 * 3600_000).default(5 * 60_000),
  GATEWAY_STDIO_MAX_LIFETIME_MS: int(1000, 7 * 24 * 3600_000).default(3600_000),
  /** Safety net besides the bus: compare cached config versions with the database this often (0 = off). */
  GATEWAY_CONFIG_RECHECK_MS: int(0, 3600_000).default(30_000),
  /** Open sessions one principal may hold in a tenant, across all nodes (0 = no cap). */
  GATEWAY_MAX_SESSIONS_PER_PRINCIPAL: int(0, 1_000_000).default(100),
  /** Requests of any kind one principal may send per minute, across all nodes (0 = off): HTTP 429 past it. */
  GATEWAY_PRINCIPAL_REQUESTS_PER_MINUTE: int(0, 10_000_000).default(0),
  /**
   * Sessions reach 2025-era Streamable HTTP upstreams over plain node:http (keep-alive, no SDK
   * client per session) when they need no callbacks; false: the SDK client for every session.
   */
  GATEWAY_UPSTREAM_HTTP_LINK: bool.default(true),
  /** On shutdown, how long in-flight calls may run before they are cut. */
  GATEWAY_DRAIN_TIMEOUT_MS: int(0, 600_000).default(10_000),
  /** Consecutive failures that open an upstream's circuit, and how long it stays open. */
  GATEWAY_CIRCUIT_FAILURE_THRESHOLD: int(1, 1000).default(5),
  GATEWAY_CIRCUIT_COOLDOWN_MS: int(100, 3_600_000).default(3000),
  /** OpenTelemetry: OTLP/HTTP base URL; unset = tracing off. */
  OTEL_EXPORTER_OTLP_ENDPOINT: optionalString.pipe(z.string().url().optional()),
  /** `k1=v1,k2=v2` headers for the OTLP exporter (OpenTelemetry SDK environment spec). */
  OTEL_EXPORTER_OTLP_HEADERS: optionalString,
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
});

export interface GatewayConfig {
  port: number;
  host: string;
  /** The metrics listener (never the agent-facing port); 0 = any free port. */
  metricsPort: number;
  metricsHost: string;
  metricsToken: string | undefined;
  databaseUrl: string | undefined;
  redisUrl: string | undefined;
  redisKeyPrefix: string;
  secretsKey: string | undefined;
  /** Without a trailing slash. */
  publicUrl: string;
  /** Public base URL of the REST API, without a trailing slash (upstream OAuth reconnect links). */
  publicApiUrl: string;
  allowedHosts: string[];
  allowStdio: boolean;
  sseResponses: boolean;
  nodeId: string;
  maxBodyBytes: number;
  requestTimeoutMs: number;
  headersTimeoutMs: number;
  sseMaxBufferedBytes: number;
  maxListenersPerPrincipal: number;
  sessionTtlSeconds: number;
  upstreamConnectTimeoutMs: number;
  upstreamTimeoutMs: number;
  upstreamRetryAfterMs: number;
  upstreamMaxMessageBytes: number;
  /** 0: the upstream's request timeout. */
  upstreamIdleTimeoutMs: number;
  stdioIdleTimeoutMs: number;
  stdioMaxLifetimeMs: number;
  configRecheckMs: number;
  maxSessionsPerPrincipal: number;
  principalRequestsPerMinute: number;
  upstreamHttpLink: boolean;
  drainTimeoutMs: number;
  circuitFailureThreshold: number;
  circuitCoolDownMs: number;
  otlpEndpoint: string | undefined;
  otlpHeaders: Record<string, string>;
  logLevel: string;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Parses the environment once; throws a ConfigError naming every bad variable. */
export function loadGatewayConfig(env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const parsed = GatewayEnvSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join(".") || "(env)"}: ${i.message}`);
    throw new ConfigError(`Invalid gateway environment:\n${lines.join("\n")}`);
  }
  const e = parsed.data;
  return gatewayConfig({
    port: e.GATEWAY_PORT,
    host: e.GATEWAY_HOST,
    metricsPort: e.GATEWAY_METRICS_PORT,
    metricsHost: e.GATEWAY_METRICS_HOST,
    metricsToken: e.GATEWAY_METRICS_TOKEN,
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    redisKeyPrefix: e.REDIS_KEY_PREFIX,
    secretsKey: e.SECRETS_KEY,
    publicUrl: e.PUBLIC_GATEWAY_URL,
    publicApiUrl: e.PUBLIC_API_URL,
    allowedHosts: e.GATEWAY_ALLOWED_HOSTS.split(",")
      .map((s) => s.trim())
      .filter(Boolean),
    allowStdio: e.GATEWAY_ALLOW_STDIO,
    sseResponses: e.GATEWAY_SSE_RESPONSES,
    ...(e.GATEWAY_NODE_ID ? { nodeId: e.GATEWAY_NODE_ID } : {}),
    maxBodyBytes: e.GATEWAY_MAX_BODY_BYTES,
    requestTimeoutMs: e.GATEWAY_REQUEST_TIMEOUT_MS,
    headersTimeoutMs: e.GATEWAY_HEADERS_TIMEOUT_MS,
    sseMaxBufferedBytes: e.GATEWAY_SSE_MAX_BUFFERED_BYTES,
    maxListenersPerPrincipal: e.GATEWAY_MAX_LISTENERS_PER_PRINCIPAL,
    sessionTtlSeconds: e.GATEWAY_SESSION_TTL_SECONDS,
    upstreamConnectTimeoutMs: e.GATEWAY_UPSTREAM_CONNECT_TIMEOUT_MS,
    upstreamTimeoutMs: e.GATEWAY_UPSTREAM_TIMEOUT_MS,
    upstreamRetryAfterMs: e.GATEWAY_UPSTREAM_RETRY_AFTER_MS,
    upstreamMaxMessageBytes: e.GATEWAY_UPSTREAM_MAX_MESSAGE_BYTES,
    upstreamIdleTimeoutMs: e.GATEWAY_UPSTREAM_IDLE_TIMEOUT_MS,
    stdioIdleTimeoutMs: e.GATEWAY_STDIO_IDLE_TIMEOUT_MS,
    stdioMaxLifetimeMs: e.GATEWAY_STDIO_MAX_LIFETIME_MS,
    configRecheckMs: e.GATEWAY_CONFIG_RECHECK_MS,
    maxSessionsPerPrincipal: e.GATEWAY_MAX_SESSIONS_PER_PRINCIPAL,
    principalRequestsPerMinute: e.GATEWAY_PRINCIPAL_REQUESTS_PER_MINUTE,
    upstreamHttpLink: e.GATEWAY_UPSTREAM_HTTP_LINK,
    drainTimeoutMs: e.GATEWAY_DRAIN_TIMEOUT_MS,
    circuitFailureThreshold: e.GATEWAY_CIRCUIT_FAILURE_THRESHOLD,
    circuitCoolDownMs: e.GATEWAY_CIRCUIT_COOLDOWN_MS,
    otlpEndpoint: e.OTEL_EXPORTER_OTLP_ENDPOINT,
    otlpHeaders: parseOtlpHeaders(e.OTEL_EXPORTER_OTLP_HEADERS),
    logLevel: e.LOG_LEVEL,
  });
}

/**
 * A complete config from a partial one, with the same defaults as the environment (for tests and
 * the embedded entry), except the metrics port: 0 (any free port), so nodes built in code never
 * fight over 9464.
 */
export function gatewayConfig(partial: Partial<GatewayConfig> = {}): GatewayConfig {
  const publicUrl = (partial.publicUrl ?? "http://localhost:8080").replace(/\/+$/, "");
  const publicApiUrl = (partial.publicApiUrl ?? "http://localhost:4000").replace(/\/+$/, "");
  return {
    port: 8080,
    host: "0.0.0.0",
    metricsPort: 0,
    metricsHost: "127.0.0.1",
    metricsToken: undefined,
    databaseUrl: undefined,
    redisUrl: undefined,
    redisKeyPrefix: "gatehouse:",
    secretsKey: undefined,
    allowedHosts: [],
    allowStdio: false,
    sseResponses: true,
    nodeId: `${hostname()}-${randomBytes(3).toString("hex")}`,
    maxBodyBytes: 4 * 1024 * 1024,
    requestTimeoutMs: 30_000,
    headersTimeoutMs: 20_000,
    sseMaxBufferedBytes: 8 * 1024 * 1024,
    maxListenersPerPrincipal: 10,
    sessionTtlSeconds: 3600,
    upstreamConnectTimeoutMs: 3000,
    upstreamTimeoutMs: 60_000,
    upstreamRetryAfterMs: 2000,
    upstreamMaxMessageBytes: 16 * 1024 * 1024,
    upstreamIdleTimeoutMs: 0,
    stdioIdleTimeoutMs: 5 * 60_000,
    stdioMaxLifetimeMs: 3600_000,
    configRecheckMs: 30_000,
    maxSessionsPerPrincipal: 100,
    principalRequestsPerMinute: 0,
    upstreamHttpLink: true,
    drainTimeoutMs: 10_000,
    circuitFailureThreshold: 5,
    circuitCoolDownMs: 3000,
    otlpEndpoint: undefined,
    otlpHeaders: {},
    logLevel: "info",
    ...partial,
    publicUrl,
    publicApiUrl,
  };
}

/** `OTEL_EXPORTER_OTLP_HEADERS`: comma-separated `key=value` pairs, values URL-encoded (OTel spec). */
function parseOtlpHeaders(raw: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of (raw ?? "").split(",")) {
    const eq = pair.indexOf("=");
    if (eq <= 0) continue;
    const key = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    try {
      out[key] = decodeURIComponent(value);
    } catch {
      out[key] = value;
    }
  }
  return out;
}
