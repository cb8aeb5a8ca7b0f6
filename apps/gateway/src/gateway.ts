import { randomUUID, timingSafeEqual } from "node:crypto";
import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
  STATUS_CODES,
} from "node:http";
import type { AddressInfo } from "node:net";
import type { Db } from "@gatehouse/db";
import { AppError, type Bus, ErrorCode, type Principal, type UpstreamSnapshot } from "@gatehouse/shared";
import { createSealer, type Sealer, UpstreamTokens } from "@gatehouse/shared/node";
import { type Logger, pino } from "pino";
import type { Registry } from "prom-client";
import { authenticate, JwtVerifier } from "./auth/authenticate.js";
import type { GatewayConfig } from "./config/gateway.config.js";
import { allowedHostSet, rejectForeignHost, rejectForeignOrigin } from "./http/guards.js";
import { jsonRpcError, sendAppError, sendEmpty, sendJson } from "./http/respond.js";
import { listSignature, mergedList } from "./mcp/aggregate.js";
import { Dispatcher } from "./mcp/dispatch.js";
import { SessionRegistry } from "./mcp/local-session.js";
import { META_SUBSCRIPTION_ID } from "./mcp/protocol.js";
import { type Caller, McpEndpoint } from "./mcp/streamable-http.js";
import { type CoreMetrics, createCoreMetrics } from "./metrics/metrics.js";
import { CircuitBreakers } from "./ops/circuit-breaker.js";
import { createGatewayMetrics, type GatewayMetrics } from "./ops/metrics.js";
import { disabledTracing, type Tracing } from "./ops/tracing.js";
import { type AuditSink, noopAuditSink, noopRateLimiter, type RateLimiter } from "./ports.js";
import { MemorySessionStore, type SessionStore } from "./sessions/session-store.js";
import { TenantConfigCache } from "./tenancy/config-cache.js";
import type { TenantState } from "./tenancy/tenant-state.js";
import { DiscoveredTools } from "./upstream/discovered-tools.js";
import { UpstreamCredentials } from "./upstream/upstream-credentials.js";
import { type CatalogChangeKind, UpstreamManager, upstreamKey } from "./upstream/upstream-manager.js";

/** Said to agents of a tenant without identity providers, whose clients may try OAuth sign-in. */
const NO_OAUTH =
  "This tenant has no identity provider, so OAuth sign-in cannot work here; send an API key (Authorization: Bearer mgw_...)";

export interface GatewayDeps {
  config: GatewayConfig;
  db: Db;
  bus: Bus;
  /** Default: in memory (one node). Pass a RedisSessionStore so any node can serve any session. */
  sessions?: SessionStore;
  logger?: Logger;
  /** Issue 4 seams: token buckets and the audit writer. Defaults do nothing. */
  rateLimiter?: RateLimiter;
  audit?: AuditSink;
  /** Prometheus registry for /metrics; pass one to add metrics of your own. */
  registry?: Registry;
  /** Overrides the sealer built from config.secretsKey. */
  sealer?: Sealer;
  /**
   * Operator metrics, circuit breakers and tracing (src/ops; `startGatewayNode` passes those of
   * `createOps`). Defaults: metrics on the core's registry, breakers from the config, tracing off.
   */
  ops?: { metrics: GatewayMetrics; breakers: CircuitBreakers; tracing: Tracing };
}

export interface Gateway {
  /** The agent-facing listener: MCP endpoints, protected resource metadata, /healthz, /readyz. */
  readonly server: Server;
  /** The operator's listener (`config.metricsPort`): /metrics, /healthz, /readyz. */
  readonly metricsServer: Server;
  readonly config: GatewayConfig;
  readonly metrics: CoreMetrics;
  readonly opsMetrics: GatewayMetrics;
  readonly breakers: CircuitBreakers;
  readonly tenants: TenantConfigCache;
  /** Sessions with state on this node (for metrics and the node registry). */
  localSessions(): number;
  /** Listens on `port` (agents) and on `config.metricsPort` (metrics); resolves with both bound ports. */
  listen(port?: number, host?: string): Promise<{ port: number; metricsPort: number }>;
  /**
   * Graceful: readiness goes false, no new requests, GET streams end, in-flight calls get up to
   * `config.drainTimeoutMs` to finish (then they are cut), upstream connections close, audit flushes.
   */
  close(): Promise<void>;
}

const MCP_PATH = /^\/t\/([^/]+)\/mcp(?:\/([^/]+))?\/?$/;
const PRM_PATH = /^\/\.well-known\/oauth-protected-resource\/t\/([^/]+)\/mcp(?:\/([^/]+))?\/?$/;

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const PROBE_PATHS = new Set(["/healthz", "/readyz"]);
const HTTP_METHODS = new Set(["GET", "POST", "DELETE", "OPTIONS", "HEAD", "PUT", "PATCH"]);

function metricHttpMethod(m: string | undefined): string {
  return m && HTTP_METHODS.has(m) ? m : "other";
}

function safeDecode(s: string): string | null {
  try {
    return decodeURIComponent(s);
  } catch {
    return null;
  }
}

export async function createGateway(deps: GatewayDeps): Promise<Gateway> {
  const { config, db, bus } = deps;
  const logger = deps.logger ?? pino({ level: config.logLevel, base: { node: config.nodeId } });
  const metrics = createCoreMetrics(deps.ops?.metrics.registry ?? deps.registry);
  const opsMetrics = deps.ops?.metrics ?? createGatewayMetrics({ registry: metrics.registry });
  const breakers =
    deps.ops?.breakers ??
    new CircuitBreakers(
      { failureThreshold: config.circuitFailureThreshold, coolDownMs: config.circuitCoolDownMs },
      (key, state) => {
        const slash = key.indexOf("/");
        if (slash > 0) opsMetrics.setCircuitState(key.slice(0, slash), key.slice(slash + 1), state);
      },
    );
  const tracing = deps.ops?.tracing ?? disabledTracing;
  const store: SessionStore = deps.sessions ?? new MemorySessionStore(config.sessionTtlSeconds);
  const sealer = deps.sealer ?? (config.secretsKey ? createSealer(config.secretsKey) : null);
  const rateLimiter = deps.rateLimiter ?? noopRateLimiter;
  const audit = deps.audit ?? noopAuditSink;
  const ownOrigin = new URL(config.publicUrl).origin;
  const hosts = allowedHostSet(config.publicUrl, config.allowedHosts);

  const tenants = new TenantConfigCache({
    prisma: db.prisma,
    bus,
    publicUrl: config.publicUrl,
    logger,
    recheckMs: config.configRecheckMs,
  });
  const upstreams = new UpstreamManager(config, sealer, logger, tracing.enabled);
  // Upstream OAuth (issue 5): tokens of the stored credentials, kept in memory and swapped when the
  // bus announces a refresh; a row is read when a token is first needed or after such an event.
  const upstreamTokens = sealer
    ? new UpstreamTokens({
        bus,
        sealer,
        apiBaseUrl: config.publicApiUrl,
        load: (upstreamId, subject) =>
          db.prisma.upstreamCredential.findUnique({ where: { upstreamId_subject: { upstreamId, subject } } }),
      })
    : null;
  const upstreamCredentials = new UpstreamCredentials(upstreamTokens, bus);
  upstreams.useCredentials(upstreamCredentials);
  const discoveredTools = new DiscoveredTools(db.prisma, upstreams, logger);
  const sessions = new SessionRegistry({
    store,
    upstreams,
    nodeId: config.nodeId,
    logger,
    onStrayResponse: () => metrics.strayClientResponses.inc(),
  });
  const dispatcher = new Dispatcher({
    upstreams,
    sessions,
    rateLimiter,
    audit,
    metrics,
    logger,
    breakers,
    tracing,
    opsMetrics,
  });
  const endpoint = new McpEndpoint({
    sessions,
    dispatcher,
    metrics,
    logger,
    maxBodyBytes: config.maxBodyBytes,
    sseResponses: config.sseResponses,
    maxSessionsPerPrincipal: config.maxSessionsPerPrincipal,
    maxListenersPerPrincipal: config.maxListenersPerPrincipal,
    sseMaxBufferedBytes: config.sseMaxBufferedBytes,
    onStreamDropped: () => metrics.sseStreamsDropped.inc(),
  });

  // Upstream ids → their tenant, for metrics labelled by tenant (catalogs, health).
  const tenantOfUpstream = new Map<string, string>();
  upstreams.onCatalogLoaded((u, catalog) => {
    const tenantId = tenantOfUpstream.get(u.id);
    if (tenantId) opsMetrics.setUpstreamCatalog(tenantId, u.name, catalog.toolNames);
  });
  upstreams.onHealth((u, up) => {
    const tenantId = tenantOfUpstream.get(u.id);
    if (tenantId) opsMetrics.setUpstreamUp(tenantId, u.name, up);
  });
  const jwt = new JwtVerifier();

  /**
   * Tells callers on this node whose visible lists changed (MCP "List Changed Notification"): the
   * GET streams of 2025-era sessions, and the `subscriptions/listen` streams of 2026-07-28 callers.
   * Tools are compared by the caller's visible list, so a change it cannot see is not announced.
   */
  const relayListChanged = async (tenant: TenantState, kind: CatalogChangeKind, only?: UpstreamSnapshot) => {
    type Target = {
      upstream: string | null;
      principal: Principal;
      signature: string | null;
      setSignature(sig: string): void;
      send(method: string): void;
    };
    const targets: Target[] = [];
    for (const s of sessions.sessions.values()) {
      if (s.record.tenantId !== tenant.id || !s.getStream || s.getStream.isClosed) continue;
      targets.push({
        upstream: s.record.upstream,
        principal: s.principal,
        signature: s.toolsSignature,
        setSignature: (sig) => {
          s.toolsSignature = sig;
        },
        send: (method) => s.notify({ jsonrpc: "2.0", method }),
      });
    }
    const flag = {
      tools: "toolsListChanged",
      prompts: "promptsListChanged",
      resources: "resourcesListChanged",
    } as const;
    for (const l of sessions.listeners) {
      if (l.tenantId !== tenant.id || !l.filter[flag[kind]]) continue;
      targets.push({
        upstream: l.upstream,
        principal: l.principal,
        // 2026-07-28 callers cache by ttl; an unknown baseline means: announce.
        signature: l.toolsSignature ?? "",
        setSignature: (sig) => {
          l.toolsSignature = sig;
        },
        send: (method) =>
          l.stream.send({ jsonrpc: "2.0", method, params: { _meta: { [META_SUBSCRIPTION_ID]: l.id } } }),
      });
    }
    for (const t of targets) {
      if (only && t.upstream !== null && t.upstream !== only.name) continue;
      const single = t.upstream ? (tenant.upstreamsByName.get(t.upstream) ?? null) : null;
      if (t.upstream && !single) continue;
      if (kind !== "tools") {
        t.send(`notifications/${kind}/list_changed`);
        continue;
      }
      if (t.signature === null) continue;
      try {
        const items = await mergedList(
          { tenant, principal: t.principal, single },
          upstreams,
          "tools",
          logger,
        );
        const sig = listSignature(items);
        if (sig !== t.signature) {
          t.setSignature(sig);
          t.send("notifications/tools/list_changed");
        }
      } catch {
        // the single upstream is down: nothing to tell
      }
    }
  };

  upstreams.onCatalogChange((u, kind) => {
    const ids = new Set([...sessions.sessions.values()].map((s) => s.record.tenantId));
    for (const l of sessions.listeners) ids.add(l.tenantId);
    for (const id of ids) {
      const tenant = tenants.peek(id);
      if (tenant?.upstreams.some((x) => x.id === u.id)) void relayListChanged(tenant, kind, u);
    }
  });

  tenants.onChange((tenantId, next, prev) => {
    for (const u of prev?.upstreams ?? []) tenantOfUpstream.delete(u.id);
    for (const u of next?.upstreams ?? []) tenantOfUpstream.set(u.id, tenantId);
    if (!next || (prev && prev.slug !== next.slug)) {
      opsMetrics.forgetTenant(tenantId);
      breakers.deletePrefix(`${tenantId}/`);
    } else if (prev) {
      // A reconfigured or removed upstream starts with a closed circuit.
      const before = new Map(prev.upstreams.map((u) => [u.name, upstreamKey(u)]));
      const after = new Map(next.upstreams.map((u) => [u.name, upstreamKey(u)]));
      for (const [name, key] of before) if (after.get(name) !== key) breakers.delete(`${tenantId}/${name}`);
    }
    if (next) opsMetrics.setConfigVersion(tenantId, next.version);
    if (!next) {
      if (prev) discoveredTools.forget(prev);
      // Tenant deleted: its sessions end on this node.
      for (const s of [...sessions.sessions.values()])
        if (s.record.tenantId === tenantId) void sessions.dropLocal(s, true);
      return;
    }
    // Tools rediscovered by the workers: refetch those catalogs (list_changed follows where it shows).
    void discoveredTools.check(next, prev !== null);
    if (!prev) return;
    upstreams.retain(new Set(next.upstreams.map(upstreamKey)), new Set(prev.upstreams.map((u) => u.id)));
    // Policy or upstream set changed: views may differ now.
    void relayListChanged(next, "tools");
  });

  let closing = false;

  /**
   * Readiness (api.md): not ready (503) only while draining. A shared part that is down (the
   * database, the bus, the session store) makes the node "degraded" but still ready (200): every
   * node shares those parts, so failing readiness on them would take every node out of the load
   * balancer at once, while each can still serve the sessions and snapshots it holds.
   */
  const readiness = async (): Promise<{
    ready: boolean;
    status: string;
    checks: Record<string, boolean>;
  }> => {
    let database = false;
    if (!closing) {
      try {
        await db.prisma.$queryRaw`SELECT 1`;
        database = true;
      } catch {
        database = false;
      }
    }
    const sessionStore = store.connected ?? true;
    const checks = { database, bus: bus.connected, sessions: sessionStore, draining: closing };
    const ready = !closing;
    const degraded = ready && !(database && bus.connected && sessionStore);
    opsMetrics.setReady(ready);
    opsMetrics.degraded.set(degraded ? 1 : 0);
    opsMetrics.sessionStoreUp.set(sessionStore ? 1 : 0);
    return { ready, status: !ready ? "not ready" : degraded ? "degraded" : "ready", checks };
  };

  /** Gauges that are cheapest to read when scraped. */
  const refreshGauges = () => {
    metrics.sessionsOpen.set(sessions.sessions.size);
    const perTenant = new Map<string, number>();
    for (const s of sessions.sessions.values())
      perTenant.set(s.record.tenantId, (perTenant.get(s.record.tenantId) ?? 0) + 1);
    opsMetrics.sessionsOpen.reset();
    for (const [tenantId, n] of perTenant)
      opsMetrics.sessionsOpen.set({ tenant: opsMetrics.tenantLabel(tenantId) }, n);
    opsMetrics.tenantsLoaded.set(tenants.size);
    opsMetrics.setBusConnected(bus.connected);
  };

  const resourceMetadata = (tenant: TenantState, upstream: string | undefined) => ({
    resource: upstream ? `${tenant.gatewayUrl}/${upstream}` : tenant.gatewayUrl,
    authorization_servers: [...new Set(tenant.identityProviders.map((i) => i.issuer))],
    bearer_methods_supported: ["header"],
    scopes_supported: [],
    resource_name: `Gatehouse MCP gateway for ${tenant.slug}`,
  });

  /**
   * RFC 6750 §3 / RFC 9728 §5.1: point the client at the protected resource metadata (MCP
   * authorization, "Protected Resource Metadata Discovery"). A tenant without identity providers
   * takes API keys only and its metadata lists no authorization server, so an OAuth flow cannot
   * work there; a client that starts one anyway (the MCP Inspector: "Interactive OAuth requires a
   * TTY") hides the real fault, a missing or wrong key. `error_description` (RFC 6750 §3) says so.
   */
  const authChallenge = (tenant: TenantState, presented: boolean): string => {
    const params = [
      `resource_metadata="${config.publicUrl}/.well-known/oauth-protected-resource/t/${tenant.slug}/mcp"`,
    ];
    if (presented) params.push('error="invalid_token"');
    if (tenant.identityProviders.length === 0) params.push(`error_description="${NO_OAUTH}"`);
    return `Bearer ${params.join(", ")}`;
  };

  const corsHeaders = (req: IncomingMessage): Record<string, string> => {
    const origin = req.headers.origin;
    if (!origin) return {};
    return {
      "access-control-allow-origin": origin,
      "access-control-expose-headers": "Mcp-Session-Id, WWW-Authenticate, Retry-After, X-Request-Id",
      vary: "Origin",
    };
  };

  /** Transport-level limit on requests of any kind per principal (GATEWAY_PRINCIPAL_REQUESTS_PER_MINUTE). */
  const overPrincipalLimit = async (
    res: ServerResponse,
    tenant: TenantState,
    principal: Principal,
    cors: Record<string, string>,
    log: Logger,
  ): Promise<boolean> => {
    const perMinute = config.principalRequestsPerMinute;
    if (perMinute <= 0) return false;
    const r = await rateLimiter.take(`principal:${tenant.id}:${principal.id}`, perMinute);
    if (r.ok) return false;
    log.info({ principal: principal.id, retryAfterMs: r.retryAfterMs }, "principal over its request limit");
    // RFC 9110 §10.2.3 / RFC 6585 §4: 429 with Retry-After in whole seconds.
    sendAppError(
      res,
      new AppError(
        ErrorCode.RATE_LIMITED,
        `Too many requests from this principal (limit ${perMinute} per minute); retry in ${Math.ceil(r.retryAfterMs / 1000)} s.`,
        { retryAfterMs: r.retryAfterMs, scope: "principal" },
      ),
      null,
      { ...cors, "retry-after": String(Math.max(1, Math.ceil(r.retryAfterMs / 1000))) },
    );
    return true;
  };

  const handleMcp = async (
    req: IncomingMessage,
    res: ServerResponse,
    requestId: string,
    log: Logger,
    tenantRef: string,
    upstreamName: string | undefined,
    seen: { tenantId: string | null },
  ): Promise<void> => {
    let tenant: TenantState | null;
    try {
      tenant = await tenants.get(tenantRef);
    } catch (err) {
      log.error({ err }, "tenant lookup failed");
      sendAppError(
        res,
        new AppError(ErrorCode.SERVICE_UNAVAILABLE, "Configuration store unavailable; retry shortly."),
      );
      return;
    }
    if (!tenant) {
      sendAppError(
        res,
        new AppError(ErrorCode.NOT_FOUND, `No tenant ${JSON.stringify(tenantRef)} on this gateway.`),
      );
      return;
    }
    seen.tenantId = tenant.id;
    if (rejectForeignOrigin(req, res, ownOrigin, tenant.allowedOrigins, req.headers.host)) return;
    const cors = corsHeaders(req);
    if (req.method === "OPTIONS") {
      sendEmpty(res, 204, {
        ...cors,
        "access-control-allow-methods": "GET, POST, DELETE, OPTIONS",
        "access-control-allow-headers":
          "Authorization, X-API-Key, Content-Type, Accept, Mcp-Session-Id, MCP-Protocol-Version, Mcp-Method, Mcp-Name, Last-Event-ID, X-Request-Id, traceparent, tracestate",
        "access-control-max-age": "600",
      });
      return;
    }
    const auth = await authenticate(req, tenant, jwt);
    if (!auth.ok) {
      const challenge = authChallenge(tenant, auth.presented);
      log.info({ tenant: tenant.slug, reason: auth.reason }, "unauthenticated");
      sendAppError(
        res,
        new AppError(
          ErrorCode.UNAUTHENTICATED,
          (auth.presented
            ? "The credentials are not valid for this tenant; use an API key or token issued for it."
            : "Authentication required: send Authorization: Bearer <API key or token>.") +
            (tenant.identityProviders.length === 0 ? ` ${NO_OAUTH}.` : ""),
        ),
        null,
        { ...cors, "www-authenticate": challenge },
      );
      return;
    }
    if (await overPrincipalLimit(res, tenant, auth.principal, cors, log)) return;
    let single: UpstreamSnapshot | null = null;
    if (upstreamName !== undefined) {
      single = tenant.upstreamsByName.get(upstreamName) ?? null;
      if (!single?.enabled) {
        sendAppError(
          res,
          new AppError(
            ErrorCode.NOT_FOUND,
            `No enabled upstream ${JSON.stringify(upstreamName)} in this tenant.`,
          ),
          null,
          cors,
        );
        return;
      }
    }
    const caller: Caller = { tenant, principal: auth.principal, single, requestId, headers: cors, log };
    await endpoint.handle(req, res, caller);
  };

  const route = async (
    req: IncomingMessage,
    res: ServerResponse,
    requestId: string,
    log: Logger,
    seen: { tenantId: string | null },
  ): Promise<void> => {
    const rawPath = (req.url ?? "/").split("?")[0] ?? "/";
    if (rawPath === "/healthz") return sendJson(res, 200, { status: "ok", node: config.nodeId });
    if (rawPath === "/readyz") {
      const r = await readiness();
      return sendJson(res, r.ready ? 200 : 503, { status: r.status, ...r.checks });
    }
    if (rejectForeignHost(req, res, hosts)) return;
    const mcp = MCP_PATH.exec(rawPath);
    if (mcp) {
      const tenantRef = safeDecode(mcp[1]!);
      const upstream = mcp[2] === undefined ? undefined : safeDecode(mcp[2]);
      if (tenantRef === null || upstream === null) {
        return sendAppError(res, new AppError(ErrorCode.INVALID_REQUEST, "Malformed path."));
      }
      return await handleMcp(req, res, requestId, log, tenantRef, upstream, seen);
    }
    const prm = PRM_PATH.exec(rawPath);
    if (prm && (req.method === "GET" || req.method === "HEAD")) {
      const tenantRef = safeDecode(prm[1]!);
      const tenant = tenantRef ? await tenants.get(tenantRef) : null;
      if (!tenant) return sendAppError(res, new AppError(ErrorCode.NOT_FOUND, "No such tenant."));
      return sendJson(res, 200, resourceMetadata(tenant, prm[2]), {
        "access-control-allow-origin": "*",
        "cache-control": "max-age=60",
      });
    }
    return sendAppError(res, new AppError(ErrorCode.NOT_FOUND, `Nothing at ${rawPath}.`));
  };

  // Slow-loris bounds: the whole request (headers and body) within requestTimeoutMs, headers within
  // headersTimeoutMs, checked every second; past them Node answers 408 and closes the connection.
  // (requestTimeout covers receiving the request only: long SSE responses are not affected.)
  const requestTimeout = config.requestTimeoutMs;
  const server = createServer(
    {
      requestTimeout,
      headersTimeout: Math.min(config.headersTimeoutMs, requestTimeout),
      connectionsCheckingInterval: Math.min(1000, requestTimeout),
    },
    (req, res) => {
      const given = req.headers["x-request-id"];
      const requestId = typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
      res.setHeader("x-request-id", requestId);
      // Every log line about this request carries its id (pino child; ~0.3 µs).
      const log = logger.child({ requestId });
      const seen = { tenantId: null as string | null };
      res.on("finish", () => {
        const method = metricHttpMethod(req.method);
        metrics.httpRequests.inc({ method, status: String(res.statusCode) });
        if (seen.tenantId) opsMetrics.recordHttpRequest(seen.tenantId, method, res.statusCode);
      });
      // Draining: probes and metrics still answer (readiness says 503), new work is turned away.
      if (closing && !PROBE_PATHS.has(req.url ?? "") && !endpoint.admitWhileDraining(req)) {
        sendAppError(
          res,
          new AppError(ErrorCode.SERVICE_UNAVAILABLE, "This gateway node is shutting down; retry."),
          null,
          { connection: "close", "retry-after": "1" },
        );
        return;
      }
      // Nothing a client sends may take the node down: every failure becomes a response.
      route(req, res, requestId, log, seen).catch((err: unknown) => {
        log.error({ err }, "unhandled request failure");
        if (!res.headersSent) {
          sendAppError(
            res,
            new AppError(
              ErrorCode.INTERNAL,
              "Internal gateway error; the log has details under the request id.",
            ),
          );
        } else if (!res.writableEnded) res.end();
      });
    },
  );
  // Metrics are labelled by tenant, upstream and tool: they are served on the operator's port
  // (GATEWAY_METRICS_PORT, loopback by default), optionally behind a bearer token, and never on the
  // agents' port (issue 8).
  const metricsToken = config.metricsToken ? Buffer.from(`Bearer ${config.metricsToken}`) : null;
  const metricsServer = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const serve = async () => {
      if (path === "/healthz") return sendJson(res, 200, { status: "ok", node: config.nodeId });
      if (path === "/readyz") {
        const r = await readiness();
        return sendJson(res, r.ready ? 200 : 503, { status: r.ready ? "ready" : "not ready", ...r.checks });
      }
      if (path !== "/metrics")
        return sendAppError(res, new AppError(ErrorCode.NOT_FOUND, `Nothing at ${path}.`));
      if (metricsToken) {
        const given = Buffer.from(String(req.headers.authorization ?? ""));
        if (given.length !== metricsToken.length || !timingSafeEqual(given, metricsToken)) {
          return sendAppError(
            res,
            new AppError(
              ErrorCode.UNAUTHENTICATED,
              "Metrics need Authorization: Bearer <GATEWAY_METRICS_TOKEN>.",
            ),
            null,
            { "www-authenticate": "Bearer" },
          );
        }
      }
      await readiness();
      refreshGauges();
      const body = await metrics.registry.metrics();
      res.writeHead(200, { "content-type": metrics.registry.contentType });
      res.end(body);
    };
    serve().catch((err: unknown) => {
      logger.error({ err }, "metrics request failed");
      if (!res.headersSent)
        sendAppError(res, new AppError(ErrorCode.INTERNAL, "Metrics failed; see the log."));
      else res.end();
    });
  });

  // HTTP the parser cannot take (a bad method, header or framing): the same JSON-RPC error body as
  // any other bad request, then the connection closes (its framing can no longer be trusted). A
  // request that did not arrive in time (requestTimeout/headersTimeout) is 408.
  server.on("clientError", (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable || err.code === "ECONNRESET") {
      socket.destroy();
      return;
    }
    const status =
      err.code === "HPE_HEADER_OVERFLOW" ? 431 : err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : 400;
    const body = JSON.stringify(
      jsonRpcError(
        null,
        new AppError(
          ErrorCode.INVALID_REQUEST,
          `Malformed HTTP request (${err.code ?? "parse error"}); send a well-formed HTTP/1.1 request.`,
        ).toJsonRpcError(),
      ),
    );
    logger.debug({ code: err.code }, "malformed HTTP request");
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  });
  server.keepAliveTimeout = 65_000;

  await upstreamCredentials.start();
  await tenants.start();
  await sessions.start();
  // Off the start-up path: readiness does not wait for it.
  void tenants.warm();
  opsMetrics.setBusConnected(bus.connected);

  const gateway: Gateway = {
    server,
    metricsServer,
    config,
    metrics,
    opsMetrics,
    breakers,
    tenants,
    localSessions: () => sessions.sessions.size,
    async listen(port = config.port, host = config.host) {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          server.off("error", reject);
          resolve();
        });
      });
      const addr = server.address() as AddressInfo;
      await new Promise<void>((resolve, reject) => {
        metricsServer.once("error", reject);
        metricsServer.listen(config.metricsPort, config.metricsHost, () => {
          metricsServer.off("error", reject);
          resolve();
        });
      }).catch((err: unknown) => {
        server.close();
        throw err;
      });
      const metricsPort = (metricsServer.address() as AddressInfo).port;
      logger.info(
        { port: addr.port, host, metricsPort, metricsHost: config.metricsHost },
        "gateway listening",
      );
      return { port: addr.port, metricsPort };
    },
    async close() {
      if (closing) return;
      closing = true;
      opsMetrics.setReady(false);
      // The listener stays open while draining: /readyz answers 503 (a load balancer takes the node
      // out) and new requests get 503 + Retry-After, while the calls in flight finish. Long-lived
      // streams end first; their clients reconnect elsewhere.
      sessions.closeStreams();
      server.closeIdleConnections();
      const inFlight = endpoint.inFlight;
      const drained = await endpoint.drain(config.drainTimeoutMs);
      if (inFlight > 0 || !drained) {
        logger.info(
          { inFlight, left: endpoint.inFlight },
          drained ? "drained in-flight calls" : "drain timed out; cutting the calls left",
        );
      }
      const stopped = new Promise<void>((resolve) => {
        if (!server.listening) return resolve();
        server.close(() => resolve());
      });
      await sessions.close();
      server.closeIdleConnections();
      const force = setTimeout(() => server.closeAllConnections(), drained ? 1000 : 0);
      force.unref();
      await stopped;
      clearTimeout(force);
      if (metricsServer.listening) {
        const metricsStopped = new Promise<void>((resolve) => metricsServer.close(() => resolve()));
        metricsServer.closeAllConnections();
        await metricsStopped;
      }
      await Promise.allSettled([upstreams.close(), tenants.close(), upstreamCredentials.stop()]);
      await audit.flush().catch((err: unknown) => logger.warn({ err }, "audit flush at shutdown failed"));
      if (!deps.sessions) await store.close();
    },
  };
  return gateway;
}
