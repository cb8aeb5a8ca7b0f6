// One gateway node with everything issue 4 adds: the core (`createGateway`) and the operations
// modules (`createOps`) built together, so `main.ts` and the embedded entry run the same node.
import { readFileSync } from "node:fs";
import type { Db } from "@gatehouse/db";
import type { Bus } from "@gatehouse/shared";
import type { Logger } from "pino";
import type { GatewayConfig } from "./config/gateway.config.js";
import { createGateway, type Gateway } from "./gateway.js";
import { createOps, type Ops, type OpsOptions } from "./ops/ops.js";
import { RedisSessionStore, type SessionStore } from "./sessions/session-store.js";

/** The gateway's version for the node registry and traces: this package's `version`. */
export const GATEWAY_VERSION: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
      version?: unknown;
    };
    return typeof pkg.version === "string" ? pkg.version : "0.0.0";
  } catch {
    return "0.0.0";
  }
})();

export interface GatewayNodeOptions {
  config: GatewayConfig;
  db: Db;
  bus: Bus;
  /** Default: Redis sessions when `config.redisUrl` is set (owned and closed by the node), else memory. */
  sessions?: SessionStore;
  logger: Logger;
  /** Tuning for tests: audit batching, heartbeat period. */
  ops?: Pick<OpsOptions, "audit" | "heartbeatMs">;
  /** Listen after starting (default true). */
  listen?: boolean;
}

export interface GatewayNode {
  readonly gateway: Gateway;
  readonly ops: Ops;
  /** The bound port (0 when not listening). */
  readonly port: number;
  /** The bound metrics port (`/metrics`, `/healthz`, `/readyz`; 0 when not listening). */
  readonly metricsPort: number;
  /**
   * Graceful: the gateway drains (readiness false, in-flight calls finish within
   * `config.drainTimeoutMs`), then ops flush the last audit batch, leave the node list, and close.
   */
  close(): Promise<void>;
}

/**
 * Starts a gateway node: ops (rate limiter, audit writer, metrics, breakers, tracing, node
 * registry) and the core on one Prometheus registry, heartbeating the applied config versions.
 * The caller keeps `db` and `bus` (it closes them after `close()`).
 */
export async function startGatewayNode(o: GatewayNodeOptions): Promise<GatewayNode> {
  const { config, db, bus, logger } = o;
  const ops = await createOps({
    prisma: db.prisma,
    nodeId: config.nodeId,
    version: GATEWAY_VERSION,
    ...(config.redisUrl ? { redisUrl: config.redisUrl } : {}),
    redisKeyPrefix: config.redisKeyPrefix,
    ...(config.otlpEndpoint ? { otlpEndpoint: config.otlpEndpoint, otlpHeaders: config.otlpHeaders } : {}),
    logger,
    breakers: {
      failureThreshold: config.circuitFailureThreshold,
      coolDownMs: config.circuitCoolDownMs,
    },
    ...o.ops,
  });
  const ownedSessions: SessionStore | undefined =
    !o.sessions && config.redisUrl
      ? new RedisSessionStore({
          url: config.redisUrl,
          keyPrefix: config.redisKeyPrefix,
          ttlSeconds: config.sessionTtlSeconds,
          nodeId: config.nodeId,
          logger,
          onReasserted: (n) => ops.metrics.sessionsReasserted.inc(n),
        })
      : undefined;
  const sessions = o.sessions ?? ownedSessions;
  let gateway: Gateway;
  try {
    gateway = await createGateway({
      config,
      db,
      bus,
      logger,
      ...(sessions ? { sessions } : {}),
      rateLimiter: ops.rateLimiter,
      audit: ops.audit,
      ops,
    });
    ops.setTenantLabeler((id) => gateway.tenants.peek(id)?.slug);
    await ops.start(() => gateway.tenants.versions());
  } catch (err) {
    await ops.close().catch(() => {});
    await ownedSessions?.close().catch(() => {});
    throw err;
  }
  let port = 0;
  let metricsPort = 0;
  if (o.listen !== false) {
    try {
      ({ port, metricsPort } = await gateway.listen());
    } catch (err) {
      await gateway.close().catch(() => {});
      await ops.close().catch(() => {});
      await ownedSessions?.close().catch(() => {});
      throw err;
    }
  }
  let closing: Promise<void> | null = null;
  return {
    gateway,
    ops,
    port,
    metricsPort,
    close() {
      closing ??= (async () => {
        await gateway.close();
        await ops.close();
        await ownedSessions?.close();
      })();
      return closing;
    },
  };
}
