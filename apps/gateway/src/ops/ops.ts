import type { PrismaClient } from "@gatehouse/db";
import type { Redis } from "ioredis";
import type { Registry } from "prom-client";
import {
  type AuditLogger,
  AuditWriter,
  type AuditWriterOptions,
  type ToolCallEvent,
} from "./audit-writer.js";
import { type CircuitBreakerOptions, CircuitBreakers } from "./circuit-breaker.js";
import { createGatewayMetrics, type GatewayMetrics, type RateLimitScope } from "./metrics.js";
import { NodeRegistry } from "./node-registry.js";
import {
  createRateLimitRedis,
  InProcessRateLimiter,
  type RateLimiter,
  type RateLimitResult,
  ResilientRateLimiter,
} from "./rate-limiter.js";
import { initTracing, type Tracing } from "./tracing.js";

export interface OpsLogger extends AuditLogger {
  info(obj: object, msg: string): void;
}

export interface OpsOptions {
  prisma: Pick<PrismaClient, "$executeRawUnsafe" | "gatewayNode">;
  nodeId: string;
  /** Gateway version for the node registry and traces. */
  version: string;
  /** Distributed mode: rate limits shared through Redis (a connection of their own). Unset: in process. */
  redisUrl?: string;
  redisKeyPrefix?: string;
  /** Register on this registry (the core's), so one `/metrics` shows everything. */
  registry?: Registry;
  /** OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT); unset = tracing off. */
  otlpEndpoint?: string;
  otlpHeaders?: Record<string, string>;
  logger?: OpsLogger;
  audit?: Omit<AuditWriterOptions, "prisma" | "metrics" | "logger">;
  breakers?: Omit<CircuitBreakerOptions, "onStateChange" | "now">;
  heartbeatMs?: number;
}

/** Everything issue 4 adds to a gateway node, built and torn down together. */
export interface Ops {
  readonly metrics: GatewayMetrics;
  /** Pass as `GatewayDeps.rateLimiter`. Counts rejections per tenant and scope (see `MeteredRateLimiter`). */
  readonly rateLimiter: MeteredRateLimiter;
  /** Pass as `GatewayDeps.audit`: records each call in the metrics and the audit log. */
  readonly audit: MeteredAuditSink;
  readonly breakers: CircuitBreakers;
  readonly tracing: Tracing;
  readonly nodeRegistry: NodeRegistry;
  /** How metrics name a tenant (default: its id). Set once the tenant cache exists, e.g. id → slug. */
  setTenantLabeler(fn: (tenantId: string) => string | undefined): void;
  /**
   * Start heartbeating (`configVersions` is read at every beat: the core's `tenants.versions()`)
   * and give the rate-limit Redis connection up to `redisWaitMs` (default 2 s) to come up, so the
   * first calls use the shared buckets; if it does not, the node starts anyway in fallback.
   */
  start(configVersions: () => Record<string, number>, redisWaitMs?: number): Promise<void>;
  /** After the gateway closed: flush audit, leave the node list, close Redis, flush traces. */
  close(): Promise<void>;
}

/**
 * Rate limiter that also counts rejections. Keys are expected as `<scope>:<tenantId>[:…]`
 * (`key:<tenantId>:<principal>`, `tenant:<tenantId>`, `tool:<tenantId>:…`,
 * `principal:<tenantId>:<principal>` for the transport-level request limit), which is how the
 * tenant and scope labels are found.
 */
export class MeteredRateLimiter implements RateLimiter {
  constructor(
    private readonly inner: RateLimiter,
    private readonly metrics: GatewayMetrics,
  ) {}

  async take(key: string, perMinute: number, cost?: number): Promise<RateLimitResult> {
    const result = await this.inner.take(key, perMinute, cost);
    if (!result.ok) {
      const [scope, tenantId] = key.split(":", 2);
      const s: RateLimitScope =
        scope === "tenant" || scope === "tool" || scope === "principal" ? scope : "key";
      this.metrics.recordRateLimited(tenantId ?? "none", s);
    }
    return result;
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** Audit sink (ports.ts `AuditSink`) that feeds the tool-call metrics and the batched writer. */
export class MeteredAuditSink {
  constructor(
    readonly writer: AuditWriter,
    private readonly metrics: GatewayMetrics,
  ) {}

  record(e: ToolCallEvent): void {
    this.metrics.recordToolCall({
      tenant: e.tenantId,
      upstream: e.upstream,
      tool: e.tool,
      outcome: e.outcome,
      totalMs: e.latencyMs,
      upstreamMs: e.upstreamLatencyMs,
    });
    this.writer.record(e);
  }

  flush(): Promise<void> {
    return this.writer.flush();
  }
}

export async function createOps(o: OpsOptions): Promise<Ops> {
  const metrics = createGatewayMetrics({ ...(o.registry ? { registry: o.registry } : {}) });

  let redis: Redis | null = null;
  let limiter: RateLimiter;
  if (o.redisUrl) {
    redis = createRateLimitRedis(o.redisUrl, {
      onError: (err) => o.logger?.warn({ err: err.message }, "rate-limit redis: connection error"),
    });
    limiter = new ResilientRateLimiter(redis, {
      prefix: o.redisKeyPrefix ?? "gatehouse:",
      onFallbackChange: (active, reason) => {
        metrics.rateLimitFallback.set(active ? 1 : 0);
        const msg = active
          ? "rate limits: Redis unreachable, enforcing per node until it is back"
          : "rate limits: Redis back, shared buckets again";
        o.logger?.warn({ reason: reason?.message }, msg);
      },
      onFallbackTake: () => metrics.rateLimitFallbackTakes.inc(),
    });
  } else {
    limiter = new InProcessRateLimiter();
  }
  metrics.rateLimitFallback.set(0);

  const writer = new AuditWriter({
    prisma: o.prisma,
    metrics,
    ...(o.logger ? { logger: o.logger } : {}),
    ...o.audit,
  });
  const breakers = new CircuitBreakers(o.breakers ?? {}, (key, state) => {
    // Keys are `${tenantId}/${upstream}`.
    const slash = key.indexOf("/");
    if (slash > 0) metrics.setCircuitState(key.slice(0, slash), key.slice(slash + 1), state);
  });
  const tracing = await initTracing({
    ...(o.otlpEndpoint ? { endpoint: o.otlpEndpoint } : {}),
    ...(o.otlpHeaders ? { headers: o.otlpHeaders } : {}),
    serviceVersion: o.version,
    instanceId: o.nodeId,
  });
  let configVersions: () => Record<string, number> = () => ({});
  const nodeRegistry = new NodeRegistry({
    prisma: o.prisma,
    id: o.nodeId,
    version: o.version,
    configVersions: () => configVersions(),
    ...(o.heartbeatMs ? { intervalMs: o.heartbeatMs } : {}),
    ...(o.logger ? { logger: o.logger } : {}),
  });

  return {
    metrics,
    rateLimiter: new MeteredRateLimiter(limiter, metrics),
    audit: new MeteredAuditSink(writer, metrics),
    breakers,
    tracing,
    nodeRegistry,
    setTenantLabeler(fn) {
      metrics.setTenantLabeler(fn);
    },
    async start(versions, redisWaitMs = 2000) {
      configVersions = versions;
      await nodeRegistry.start();
      if (redis && redis.status !== "ready") {
        const r = redis;
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer);
            r.off("ready", done);
            resolve();
          };
          const timer = setTimeout(done, redisWaitMs);
          r.once("ready", done);
        });
      }
    },
    async close() {
      const results = await Promise.allSettled([nodeRegistry.stop(), writer.close(), limiter.close()]);
      redis?.disconnect();
      await tracing.shutdown();
      for (const r of results) {
        if (r.status === "rejected") o.logger?.warn({ err: r.reason }, "ops: error while closing");
      }
    },
  };
}
