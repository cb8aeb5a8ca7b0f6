import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/**
 * How a tool call ended, as a bounded label. Use a fixed set, e.g. the one in ports.ts: `ok`,
 * `error` (the tool answered `isError: true`), `denied`, `rate_limited`, `upstream_unavailable`,
 * `upstream_error`, `timeout`, `cancelled`, `not_found`. Never a free-form message.
 */
export type CallOutcome = string;

export type CircuitStateValue = "closed" | "half_open" | "open";
export type RateLimitScope = "key" | "tenant" | "tool" | "principal";

export interface GatewayMetricsOptions {
  /** Registry to register into; a fresh one by default (tests make one each). */
  registry?: Registry;
  /**
   * Also collect Node process metrics (CPU, memory, event-loop lag, GC), unprefixed
   * (`process_resident_memory_bytes` …). Skipped when the registry already has them. Default true.
   */
  defaultMetrics?: boolean;
  /** Tools per (tenant, upstream) that get their own `tool` label; the rest are `other`. Default 50. */
  maxToolsPerUpstream?: number;
  /** Distinct tenants that get their own `tenant` label; beyond that `other`. Default 10,000. */
  maxTenants?: number;
  /** Static labels on every series, e.g. `{ node: "<node id>" }`. */
  defaultLabels?: Record<string, string>;
}

/** Label value used when a value is not in the allowed set. */
export const OTHER = "other";
/** Label value when there is no upstream/tool (e.g. the name did not resolve). */
export const NONE = "none";

// Gateway-own time is sub-millisecond when all is well; upstream time spans ms to the 60 s timeout.
const OVERHEAD_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
const UPSTREAM_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export interface ToolCallSample {
  tenant: string;
  /** Upstream name, or null when the call never resolved to one. */
  upstream: string | null;
  tool: string | null;
  outcome: CallOutcome;
  /** Whole call as the gateway saw it, ms. */
  totalMs: number;
  /** Time spent waiting for the upstream, ms (null when it was never contacted). */
  upstreamMs: number | null;
}

/**
 * The gateway's Prometheus metrics. Label sets are bounded: `tool` only for names in the
 * upstream's catalog (first `maxToolsPerUpstream`), so names a client makes up never become
 * series; `outcome` is `ok`/`tool_error`/an error code; tenants are capped.
 */
export class GatewayMetrics {
  readonly registry: Registry;
  readonly httpRequests: Counter<"tenant" | "method" | "status">;
  readonly toolCalls: Counter<"tenant" | "upstream" | "tool" | "outcome">;
  readonly callDuration: Histogram<"tenant" | "upstream" | "outcome">;
  readonly gatewayOverhead: Histogram<"tenant">;
  readonly upstreamDuration: Histogram<"tenant" | "upstream">;
  readonly upstreamUp: Gauge<"tenant" | "upstream">;
  readonly circuitState: Gauge<"tenant" | "upstream">;
  readonly sessionsOpen: Gauge<"tenant">;
  readonly configVersion: Gauge<"tenant">;
  readonly tenantsLoaded: Gauge;
  readonly rateLimitRejections: Counter<"tenant" | "scope">;
  readonly rateLimitFallback: Gauge;
  readonly rateLimitFallbackTakes: Counter;
  readonly busConnected: Gauge;
  readonly auditQueued: Gauge;
  readonly auditWritten: Counter;
  readonly auditDropped: Counter<"reason">;
  readonly auditWriteErrors: Counter;
  readonly ready: Gauge;
  readonly degraded: Gauge;
  readonly sessionStoreUp: Gauge;
  readonly sessionsReasserted: Counter;

  private readonly maxTools: number;
  private readonly maxTenants: number;
  private readonly catalogs = new Map<string, Set<string>>();
  /** tenant id → label, for at most `maxTenants` tenants. */
  private readonly labels = new Map<string, string>();
  private labeler: (tenantId: string) => string | undefined = (id) => id;
  private readonly upstreamsOf = new Map<string, Set<string>>();

  constructor(options: GatewayMetricsOptions = {}) {
    this.registry = options.registry ?? new Registry();
    const registers = [this.registry];
    if (options.defaultLabels) this.registry.setDefaultLabels(options.defaultLabels);
    if (
      (options.defaultMetrics ?? true) &&
      !this.registry.getSingleMetric("process_cpu_user_seconds_total")
    ) {
      collectDefaultMetrics({ register: this.registry });
    }
    this.maxTools = options.maxToolsPerUpstream ?? 50;
    this.maxTenants = options.maxTenants ?? 10_000;

    this.httpRequests = reuse(
      this.registry,
      "gatehouse_gateway_requests_total",
      () =>
        new Counter({
          name: "gatehouse_gateway_requests_total",
          help: "HTTP requests to tenant MCP endpoints, by tenant, HTTP method and status code.",
          labelNames: ["tenant", "method", "status"],
          registers,
        }),
    );
    this.toolCalls = reuse(
      this.registry,
      "gatehouse_gateway_tool_calls_total",
      () =>
        new Counter({
          name: "gatehouse_gateway_tool_calls_total",
          help: "tools/call requests by tenant, upstream, tool (catalog tools only, else 'other') and outcome.",
          labelNames: ["tenant", "upstream", "tool", "outcome"],
          registers,
        }),
    );
    this.callDuration = reuse(
      this.registry,
      "gatehouse_gateway_tool_call_duration_seconds",
      () =>
        new Histogram({
          name: "gatehouse_gateway_tool_call_duration_seconds",
          help: "Whole tools/call time as the gateway saw it (gateway + upstream).",
          labelNames: ["tenant", "upstream", "outcome"],
          buckets: UPSTREAM_BUCKETS,
          registers,
        }),
    );
    this.gatewayOverhead = reuse(
      this.registry,
      "gatehouse_gateway_overhead_seconds",
      () =>
        new Histogram({
          name: "gatehouse_gateway_overhead_seconds",
          help: "Time the gateway itself added to a tools/call (total minus upstream time).",
          labelNames: ["tenant"],
          buckets: OVERHEAD_BUCKETS,
          registers,
        }),
    );
    this.upstreamDuration = reuse(
      this.registry,
      "gatehouse_gateway_upstream_duration_seconds",
      () =>
        new Histogram({
          name: "gatehouse_gateway_upstream_duration_seconds",
          help: "Time waiting for the upstream on a tools/call.",
          labelNames: ["tenant", "upstream"],
          buckets: UPSTREAM_BUCKETS,
          registers,
        }),
    );
    this.upstreamUp = reuse(
      this.registry,
      "gatehouse_gateway_upstream_up",
      () =>
        new Gauge({
          name: "gatehouse_gateway_upstream_up",
          help: "1 when the last contact with the upstream succeeded, 0 when it failed.",
          labelNames: ["tenant", "upstream"],
          registers,
        }),
    );
    this.circuitState = reuse(
      this.registry,
      "gatehouse_gateway_upstream_circuit_state",
      () =>
        new Gauge({
          name: "gatehouse_gateway_upstream_circuit_state",
          help: "Circuit breaker per upstream: 0 closed, 1 half-open, 2 open.",
          labelNames: ["tenant", "upstream"],
          registers,
        }),
    );
    this.sessionsOpen = reuse(
      this.registry,
      "gatehouse_gateway_sessions_open",
      () =>
        new Gauge({
          name: "gatehouse_gateway_sessions_open",
          help: "MCP sessions open on this node.",
          labelNames: ["tenant"],
          registers,
        }),
    );
    this.configVersion = reuse(
      this.registry,
      "gatehouse_gateway_config_version",
      () =>
        new Gauge({
          name: "gatehouse_gateway_config_version",
          help: "Config version of the tenant snapshot this node has applied.",
          labelNames: ["tenant"],
          registers,
        }),
    );
    this.tenantsLoaded = reuse(
      this.registry,
      "gatehouse_gateway_tenants_loaded",
      () =>
        new Gauge({
          name: "gatehouse_gateway_tenants_loaded",
          help: "Tenant snapshots held in memory on this node.",
          registers,
        }),
    );
    this.rateLimitRejections = reuse(
      this.registry,
      "gatehouse_gateway_rate_limit_rejections_total",
      () =>
        new Counter({
          name: "gatehouse_gateway_rate_limit_rejections_total",
          help: "Requests refused by a rate limit, by tenant and bucket scope (key, tenant, tool).",
          labelNames: ["tenant", "scope"],
          registers,
        }),
    );
    this.rateLimitFallback = reuse(
      this.registry,
      "gatehouse_gateway_rate_limit_local_fallback",
      () =>
        new Gauge({
          name: "gatehouse_gateway_rate_limit_local_fallback",
          help: "1 while rate limits are enforced per node because Redis is unreachable.",
          registers,
        }),
    );
    this.rateLimitFallbackTakes = reuse(
      this.registry,
      "gatehouse_gateway_rate_limit_local_takes_total",
      () =>
        new Counter({
          name: "gatehouse_gateway_rate_limit_local_takes_total",
          help: "Rate-limit checks answered by a local bucket because Redis failed or was not ready.",
          registers,
        }),
    );
    this.busConnected = reuse(
      this.registry,
      "gatehouse_gateway_bus_connected",
      () =>
        new Gauge({
          name: "gatehouse_gateway_bus_connected",
          help: "1 while the config bus is connected.",
          registers,
        }),
    );
    this.auditQueued = reuse(
      this.registry,
      "gatehouse_gateway_audit_queue_size",
      () =>
        new Gauge({
          name: "gatehouse_gateway_audit_queue_size",
          help: "Audit events waiting to be written.",
          registers,
        }),
    );
    this.auditWritten = reuse(
      this.registry,
      "gatehouse_gateway_audit_written_total",
      () =>
        new Counter({
          name: "gatehouse_gateway_audit_written_total",
          help: "Audit events written to the database.",
          registers,
        }),
    );
    this.auditDropped = reuse(
      this.registry,
      "gatehouse_gateway_audit_dropped_total",
      () =>
        new Counter({
          name: "gatehouse_gateway_audit_dropped_total",
          help: "Audit events lost: queue_full (oldest dropped), rejected (the database refused the row), shutdown.",
          labelNames: ["reason"],
          registers,
        }),
    );
    this.auditWriteErrors = reuse(
      this.registry,
      "gatehouse_gateway_audit_write_errors_total",
      () =>
        new Counter({
          name: "gatehouse_gateway_audit_write_errors_total",
          help: "Failed audit batch writes (retried).",
          registers,
        }),
    );
    this.ready = reuse(
      this.registry,
      "gatehouse_gateway_ready",
      () =>
        new Gauge({
          name: "gatehouse_gateway_ready",
          help: "1 when this node reports ready (config loaded, not draining).",
          registers,
        }),
    );
    this.degraded = reuse(
      this.registry,
      "gatehouse_gateway_degraded",
      () =>
        new Gauge({
          name: "gatehouse_gateway_degraded",
          help: "1 while the node serves with a shared part down (database, bus or session store); /readyz says which.",
          registers,
        }),
    );
    this.sessionStoreUp = reuse(
      this.registry,
      "gatehouse_gateway_session_store_up",
      () =>
        new Gauge({
          name: "gatehouse_gateway_session_store_up",
          help: "1 while the shared session store (Redis) answers; 0: only sessions this node holds are served.",
          registers,
        }),
    );
    this.sessionsReasserted = reuse(
      this.registry,
      "gatehouse_gateway_sessions_reasserted_total",
      () =>
        new Counter({
          name: "gatehouse_gateway_sessions_reasserted_total",
          help: "Sessions this node wrote back to a Redis that had lost them (restarted empty or flushed).",
          registers,
        }),
    );
  }

  /**
   * Declare the tools an upstream offers (call on every catalog load/refresh). Only the first
   * `maxToolsPerUpstream` names, in the given order, get their own label.
   */
  setUpstreamCatalog(tenant: string, upstream: string, tools: Iterable<string>): void {
    const allowed = new Set<string>();
    for (const tool of tools) {
      if (allowed.size >= this.maxTools) break;
      allowed.add(tool);
    }
    this.catalogs.set(catalogKey(tenant, upstream), allowed);
  }

  /**
   * How tenants are named in labels. Every helper takes the tenant's id; by default the id is
   * the label. Give e.g. `id => tenants.peek(id)?.slug` for readable dashboards.
   */
  setTenantLabeler(fn: (tenantId: string) => string | undefined): void {
    this.labeler = fn;
    this.labels.clear();
  }

  /** Forget a tenant's catalogs and gauges (tenant deleted, renamed, or snapshot evicted). */
  forgetTenant(tenant: string): void {
    const label = this.labels.get(tenant);
    for (const key of this.catalogs.keys()) if (key.startsWith(`${tenant}\u0000`)) this.catalogs.delete(key);
    this.labels.delete(tenant);
    if (label === undefined) return;
    for (const gauge of [this.sessionsOpen, this.configVersion]) gauge.remove({ tenant: label });
    for (const upstream of this.upstreamsOf.get(tenant) ?? []) {
      this.upstreamUp.remove({ tenant: label, upstream });
      this.circuitState.remove({ tenant: label, upstream });
    }
    this.upstreamsOf.delete(tenant);
  }

  /** The label for a tenant: its name (see `setTenantLabeler`) while under the cap, else `other`. */
  tenantLabel(tenant: string): string {
    const cached = this.labels.get(tenant);
    if (cached !== undefined) return cached;
    if (this.labels.size >= this.maxTenants) return OTHER;
    const named = this.labeler(tenant);
    // Not cached while unnamed: the tenant's snapshot may simply not be loaded yet.
    if (named === undefined) return tenant;
    this.labels.set(tenant, named);
    return named;
  }

  /** The label for a tool: its name when in the upstream's declared catalog, else `other`. */
  toolLabel(tenant: string, upstream: string | null, tool: string | null): string {
    if (!upstream || !tool) return NONE;
    return this.catalogs.get(catalogKey(tenant, upstream))?.has(tool) ? tool : OTHER;
  }

  /** One tools/call: counter, whole-call histogram, gateway-own and upstream histograms. */
  recordToolCall(s: ToolCallSample): void {
    const tenant = this.tenantLabel(s.tenant);
    const upstream = s.upstream ?? NONE;
    this.toolCalls.inc({
      tenant,
      upstream,
      tool: this.toolLabel(s.tenant, s.upstream, s.tool),
      outcome: s.outcome,
    });
    this.callDuration.observe({ tenant, upstream, outcome: s.outcome }, s.totalMs / 1000);
    const overheadMs = s.upstreamMs === null ? s.totalMs : Math.max(0, s.totalMs - s.upstreamMs);
    this.gatewayOverhead.observe({ tenant }, overheadMs / 1000);
    if (s.upstreamMs !== null) this.upstreamDuration.observe({ tenant, upstream }, s.upstreamMs / 1000);
  }

  /** One HTTP request on a tenant endpoint. `tenant` is null when the path named no known tenant. */
  recordHttpRequest(tenant: string | null, method: string, status: number): void {
    const m = HTTP_METHODS.has(method) ? method : OTHER;
    this.httpRequests.inc({
      tenant: tenant ? this.tenantLabel(tenant) : NONE,
      method: m,
      status: String(status),
    });
  }

  recordRateLimited(tenant: string, scope: RateLimitScope): void {
    this.rateLimitRejections.inc({ tenant: this.tenantLabel(tenant), scope });
  }

  setUpstreamUp(tenant: string, upstream: string, up: boolean): void {
    this.noteUpstream(tenant, upstream);
    this.upstreamUp.set({ tenant: this.tenantLabel(tenant), upstream }, up ? 1 : 0);
  }

  setCircuitState(tenant: string, upstream: string, state: CircuitStateValue): void {
    this.noteUpstream(tenant, upstream);
    this.circuitState.set(
      { tenant: this.tenantLabel(tenant), upstream },
      state === "closed" ? 0 : state === "half_open" ? 1 : 2,
    );
  }

  private noteUpstream(tenant: string, upstream: string): void {
    let set = this.upstreamsOf.get(tenant);
    if (!set) {
      set = new Set();
      this.upstreamsOf.set(tenant, set);
    }
    set.add(upstream);
  }

  sessionOpened(tenant: string): void {
    this.sessionsOpen.inc({ tenant: this.tenantLabel(tenant) });
  }

  sessionClosed(tenant: string): void {
    this.sessionsOpen.dec({ tenant: this.tenantLabel(tenant) });
  }

  setConfigVersion(tenant: string, version: number): void {
    this.configVersion.set({ tenant: this.tenantLabel(tenant) }, version);
  }

  setBusConnected(connected: boolean): void {
    this.busConnected.set(connected ? 1 : 0);
  }

  setReady(ready: boolean): void {
    this.ready.set(ready ? 1 : 0);
  }

  /** Body and content type for `GET /metrics`. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

const HTTP_METHODS = new Set(["GET", "POST", "DELETE", "OPTIONS", "HEAD", "PUT", "PATCH"]);

/**
 * The metric of that name if the registry has it (a second GatewayMetrics on the same registry,
 * or the core's own metric of the same name and labels), else a new one.
 */
function reuse<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

function catalogKey(tenant: string, upstream: string): string {
  return `${tenant}\u0000${upstream}`;
}

/** Factory: a registry with every gateway metric registered. */
export function createGatewayMetrics(options: GatewayMetricsOptions = {}): GatewayMetrics {
  return new GatewayMetrics(options);
}
