import { AppError, ErrorCode, isOAuthAuthMode, type UpstreamSnapshot } from "@gatehouse/shared";
import type { Sealer } from "@gatehouse/shared/node";
import type { ClientCapabilities, PriorDiscovery } from "@modelcontextprotocol/client";
import type { Logger } from "pino";
import type { GatewayConfig } from "../config/gateway.config.js";
import type { UpstreamSessionRef } from "../sessions/session-store.js";
import { upstreamFingerprint } from "../tenancy/tenant-state.js";
import { HttpEndpoint, HttpLink, type ResponseLimits } from "./http-session.js";
import {
  connectUpstream,
  GATEWAY_CLIENT_INFO,
  isSessionGone,
  toAppError,
  type UpstreamConnection,
  type UpstreamHandlers,
  type UpstreamLink,
  unsealHeaders,
} from "./upstream-client.js";
import { authFailureOf, type CallerScope, UpstreamCredentials } from "./upstream-credentials.js";

type Json = Record<string, unknown>;

/** What an upstream offers, as last listed. */
export interface Catalog {
  tools: Json[];
  prompts: Json[];
  resources: Json[];
  resourceTemplates: Json[];
  capabilities: Json;
  instructions: string | undefined;
  fetchedAt: number;
  /** Names of `tools` and `prompts`, for lookups on the call path. */
  toolNames: Set<string>;
  promptNames: Set<string>;
}

export type CatalogChangeKind = "tools" | "prompts" | "resources";

interface CatalogEntry {
  value: Catalog | null;
  pending: Promise<Catalog> | null;
  /** Set by list_changed: the next read refetches. */
  stale: boolean;
  /** Whom it is listed for (OAuth upstreams; per-user ones have one entry per principal). */
  caller: CallerScope | undefined;
  readAt: number;
}

/** A per-user upstream's node-level connection of one principal closes after this long unused. */
const PER_USER_IDLE_MS = 5 * 60_000;
/** A per-user upstream's catalog of one principal is forgotten after this long unread. */
const PER_USER_CATALOG_TTL_MS = 15 * 60_000;

/** The upstream part of a shared-connection or catalog key (without the per-user partition). */
function baseKey(key: string): string {
  const i = key.indexOf("\u0000");
  return i < 0 ? key : key.slice(0, i);
}

const MAX_PAGES = 50;

/** Key of one upstream's configuration: a config change gives a new key, so old connections age out. */
export function upstreamKey(u: UpstreamSnapshot): string {
  // Snapshots are immutable and looked up on every call: hash each one once.
  let key = keys.get(u);
  if (key === undefined) {
    key = `${u.id}:${upstreamFingerprint(u)}`;
    keys.set(u, key);
  }
  return key;
}
const keys = new WeakMap<UpstreamSnapshot, string>();

/**
 * Per-node upstream state: the era verdict per upstream, a negative cache of upstreams that failed
 * to connect (calls fail fast for a while instead of hanging), one shared connection per upstream
 * for catalogs (and for stateless 2026-era callers), and the catalogs themselves.
 */
export class UpstreamManager {
  private readonly priors = new Map<string, PriorDiscovery>();
  private readonly down = new Map<string, { until: number; error: AppError }>();
  private readonly shared = new Map<string, Promise<UpstreamConnection>>();
  private readonly catalogs = new Map<string, CatalogEntry>();
  private readonly lifetimes = new Map<
    UpstreamConnection,
    { idle: NodeJS.Timeout | null; max: NodeJS.Timeout }
  >();
  private readonly changeListeners = new Set<(u: UpstreamSnapshot, kind: CatalogChangeKind) => void>();
  private readonly catalogListeners = new Set<(u: UpstreamSnapshot, catalog: Catalog) => void>();
  private readonly healthListeners = new Set<(u: UpstreamSnapshot, up: boolean) => void>();
  /** Last snapshot seen per key, to name the upstream in change events. */
  private readonly snapshots = new Map<string, UpstreamSnapshot>();
  private readonly debounce = new Map<string, NodeJS.Timeout>();
  /** Keep-alive HTTP endpoints of the upstreams that sessions reach over `HttpLink`s. */
  private readonly endpoints = new Map<string, HttpEndpoint>();
  private closed = false;
  private credentials = new UpstreamCredentials(null);
  private sweeper: NodeJS.Timeout | null = null;

  constructor(
    private readonly config: GatewayConfig,
    private readonly sealer: Sealer | null,
    private readonly logger: Logger,
    /** Tracing is on: upstream HTTP requests carry `traceparent`. */
    private readonly traceContext = false,
  ) {}

  /**
   * Upstream OAuth (issue 5): connections to OAuth upstreams take their tokens from `credentials`,
   * and per-user upstreams get node-level connections and catalogs per principal. Call once at
   * startup; without it OAuth upstreams fail with a clear error.
   */
  useCredentials(credentials: UpstreamCredentials): void {
    this.credentials = credentials;
    if (!this.sweeper) {
      this.sweeper = setInterval(() => this.sweepPerUser(), 60_000);
      this.sweeper.unref();
    }
  }

  onCatalogChange(fn: (u: UpstreamSnapshot, kind: CatalogChangeKind) => void): void {
    this.changeListeners.add(fn);
  }

  /** Every catalog (re)load, e.g. to declare the upstream's tools to the metrics. */
  onCatalogLoaded(fn: (u: UpstreamSnapshot, catalog: Catalog) => void): void {
    this.catalogListeners.add(fn);
  }

  /** Every connect attempt's outcome (upstream health). */
  onHealth(fn: (u: UpstreamSnapshot, up: boolean) => void): void {
    this.healthListeners.add(fn);
  }

  /** Tells the health listeners how the last contact with `u` went. */
  reportHealth(u: UpstreamSnapshot, up: boolean): void {
    for (const l of this.healthListeners) {
      try {
        l(u, up);
      } catch (err) {
        this.logger.error({ err }, "upstream health listener failed");
      }
    }
  }

  timeoutOf(u: UpstreamSnapshot): number {
    return u.timeoutMs ?? this.config.upstreamTimeoutMs;
  }

  /** What one upstream answer may be (issue 8): message size, wait for headers, silence within. */
  responseLimits(u: UpstreamSnapshot): ResponseLimits {
    const timeout = this.timeoutOf(u);
    return {
      maxMessageBytes: this.config.upstreamMaxMessageBytes,
      firstByteMs: timeout,
      idleMs: this.config.upstreamIdleTimeoutMs || timeout,
    };
  }

  /** Fails fast while an upstream is in the negative cache. */
  assertReachable(u: UpstreamSnapshot): void {
    const d = this.down.get(upstreamKey(u));
    if (d && d.until > Date.now()) throw d.error;
  }

  /**
   * Opens a connection with the cached era verdict, recording failures in the negative cache.
   * `caller` is whom it serves: an OAuth upstream's connection carries that caller's credential
   * (the tenant's shared one, or, for per-user upstreams, the principal's own) and nobody else's.
   */
  async connect(
    u: UpstreamSnapshot,
    capabilities: ClientCapabilities,
    handlers: UpstreamHandlers,
    resume?: UpstreamSessionRef,
    caller?: CallerScope,
  ): Promise<UpstreamConnection> {
    if (this.closed) throw new AppError(ErrorCode.UPSTREAM_UNAVAILABLE, "The gateway node is shutting down.");
    const key = upstreamKey(u);
    this.snapshots.set(key, u);
    this.assertReachable(u);
    const prior = this.priors.get(key);
    const authProvider = this.credentials.authProvider(u, caller);
    // Set once connected: a handshake that fails closes the client, which calls onClose first.
    let connRef: UpstreamConnection | undefined;
    try {
      const conn = await connectUpstream({
        upstream: u,
        sealer: this.sealer,
        allowStdio: this.config.allowStdio,
        connectTimeoutMs: this.config.upstreamConnectTimeoutMs,
        traceContext: this.traceContext,
        limits: this.responseLimits(u),
        capabilities,
        handlers: {
          ...handlers,
          onNotification: (method, params) => {
            this.observeNotification(u, method);
            handlers.onNotification?.(method, params);
          },
          onClose: () => {
            this.clearLifetime(connRef);
            handlers.onClose?.();
          },
        },
        ...(resume ? { resume } : {}),
        ...(prior ? { prior } : {}),
        ...(authProvider ? { authProvider } : {}),
      });
      connRef = conn;
      const verdict = conn.prior();
      if (verdict) this.priors.set(key, verdict);
      this.down.delete(key);
      if (u.transport === "stdio") this.boundLifetime(conn);
      this.reportHealth(u, true);
      return conn;
    } catch (err) {
      const e = toAppError(err, u, "connect");
      // One caller's missing or refused credential says nothing about the upstream's health.
      if (authFailureOf(err)) throw e;
      this.connectFailed(u, key, e);
      throw e;
    }
  }

  /**
   * Whether a session's link to `u` can be the plain HTTP one (`HttpLink`): a 2025-era Streamable
   * HTTP upstream (known from the shared connection's verdict) with static credentials, for a
   * session that has nothing for the upstream to call back (no sampling, elicitation or roots).
   */
  canUseHttpLink(u: UpstreamSnapshot, capabilities: ClientCapabilities): boolean {
    return (
      this.config.upstreamHttpLink &&
      u.transport === "streamable-http" &&
      !isOAuthAuthMode(u.authMode) &&
      Object.keys(capabilities).length === 0 &&
      this.priors.get(upstreamKey(u))?.kind === "legacy"
    );
  }

  private endpoint(u: UpstreamSnapshot): HttpEndpoint {
    const key = upstreamKey(u);
    let e = this.endpoints.get(key);
    if (!e) {
      e = new HttpEndpoint(u, unsealHeaders(u, this.sealer), this.responseLimits(u));
      this.endpoints.set(key, e);
    }
    return e;
  }

  /** A session's HTTP link: a new upstream session (initialize), or `resume`d without a round trip. */
  async openHttpLink(
    u: UpstreamSnapshot,
    handlers: UpstreamHandlers,
    resume?: UpstreamSessionRef,
  ): Promise<HttpLink> {
    if (this.closed) throw new AppError(ErrorCode.UPSTREAM_UNAVAILABLE, "The gateway node is shutting down.");
    const key = upstreamKey(u);
    this.snapshots.set(key, u);
    this.assertReachable(u);
    const observed: UpstreamHandlers = {
      ...handlers,
      onNotification: (method, params) => {
        this.observeNotification(u, method);
        handlers.onNotification?.(method, params);
      },
    };
    if (resume) return HttpLink.resume(this.endpoint(u), observed, resume);
    try {
      const link = await HttpLink.open(
        this.endpoint(u),
        observed,
        GATEWAY_CLIENT_INFO,
        this.config.upstreamConnectTimeoutMs,
      );
      this.down.delete(key);
      this.reportHealth(u, true);
      return link;
    } catch (err) {
      const e = toAppError(err, u, "connect");
      this.connectFailed(u, key, e);
      throw e;
    }
  }

  /**
   * An upstream that could not be reached counts as down, and calls to it fail fast for a while
   * (configuration problems such as stdio disabled or no URL as much as outages).
   */
  private connectFailed(u: UpstreamSnapshot, key: string, e: AppError): void {
    if (e.code !== ErrorCode.UPSTREAM_UNAVAILABLE) return;
    this.reportHealth(u, false);
    if (this.config.upstreamRetryAfterMs > 0)
      this.down.set(key, { until: Date.now() + this.config.upstreamRetryAfterMs, error: e });
  }

  /** Marks a connection as used (for stdio ones, restarts the idle timer). */
  touch(link: UpstreamLink): void {
    link.lastUsedAt = Date.now();
    if (link.kind !== "sdk") return;
    const conn = link as UpstreamConnection;
    const l = this.lifetimes.get(conn);
    if (!l) return;
    if (l.idle) clearTimeout(l.idle);
    l.idle = setTimeout(() => void conn.close(), this.config.stdioIdleTimeoutMs);
    l.idle.unref();
  }

  /** stdio processes live at most `stdioMaxLifetimeMs`, and die after `stdioIdleTimeoutMs` unused. */
  private boundLifetime(conn: UpstreamConnection): void {
    const max = setTimeout(() => void conn.close(), this.config.stdioMaxLifetimeMs);
    max.unref();
    this.lifetimes.set(conn, { idle: null, max });
    this.touch(conn);
  }

  private clearLifetime(conn: UpstreamConnection | undefined): void {
    if (!conn) return;
    const l = this.lifetimes.get(conn);
    if (!l) return;
    if (l.idle) clearTimeout(l.idle);
    clearTimeout(l.max);
    this.lifetimes.delete(conn);
  }

  private observeNotification(u: UpstreamSnapshot, method: string): void {
    const kind: CatalogChangeKind | null =
      method === "notifications/tools/list_changed"
        ? "tools"
        : method === "notifications/prompts/list_changed"
          ? "prompts"
          : method === "notifications/resources/list_changed"
            ? "resources"
            : null;
    if (!kind) return;
    this.markStale(u, kind);
  }

  /**
   * list_changed from any connection to the upstream: refetch, then tell the listeners. Debounced
   * per upstream, since every session connection may announce the same change.
   */
  markStale(u: UpstreamSnapshot, kind: CatalogChangeKind): void {
    const key = upstreamKey(u);
    const entries = this.catalogEntries(key);
    for (const [, entry] of entries) entry.stale = true;
    const debounceKey = `${key}:${kind}`;
    if (this.debounce.has(debounceKey)) return;
    const timer = setTimeout(() => {
      this.debounce.delete(debounceKey);
      // Each entry is refetched for whom it was listed (per-user: each principal, own credential).
      const targets = this.catalogEntries(key);
      const refetch = targets.length > 0 ? targets.map(([, e]) => e.caller) : [undefined];
      void Promise.allSettled(refetch.map((caller) => this.catalog(u, caller))).then(() => {
        for (const l of this.changeListeners) {
          try {
            l(u, kind);
          } catch (err) {
            this.logger.error({ err }, "catalog change listener failed");
          }
        }
      });
    }, 50);
    timer.unref();
    this.debounce.set(debounceKey, timer);
  }

  /** Catalog entries of one upstream configuration (one per principal for per-user upstreams). */
  private catalogEntries(key: string): Array<[string, CatalogEntry]> {
    return [...this.catalogs].filter(([k]) => baseKey(k) === key);
  }

  /**
   * The node's shared connection to an upstream (catalogs, stateless callers). Per-user OAuth
   * upstreams have one per principal, carrying that principal's own token.
   */
  async sharedConnection(u: UpstreamSnapshot, caller?: CallerScope): Promise<UpstreamConnection> {
    const key = upstreamKey(u) + this.credentials.partition(u, caller);
    const existing = this.shared.get(key);
    if (existing) {
      const conn = await existing.catch(() => null);
      if (conn && !conn.isClosed) {
        this.touch(conn);
        return conn;
      }
      if (this.shared.get(key) === existing) this.shared.delete(key);
    }
    const p = this.connect(
      u,
      {},
      {
        onClose: () => {
          if (this.shared.get(key) === p) this.shared.delete(key);
        },
      },
      undefined,
      caller,
    );
    this.shared.set(key, p);
    p.catch(() => {
      if (this.shared.get(key) === p) this.shared.delete(key);
    });
    return await p;
  }

  /** Runs `fn` on the shared connection; if the upstream forgot that session, reconnects once. */
  async withShared<T>(
    u: UpstreamSnapshot,
    fn: (c: UpstreamConnection) => Promise<T>,
    caller?: CallerScope,
  ): Promise<T> {
    const conn = await this.sharedConnection(u, caller);
    try {
      return await fn(conn);
    } catch (err) {
      if (!isSessionGone(err, false)) throw err;
      const key = upstreamKey(u) + this.credentials.partition(u, caller);
      const current = this.shared.get(key);
      if (current && (await current.catch(() => null)) === conn) this.shared.delete(key);
      void conn.close();
      return await fn(await this.sharedConnection(u, caller));
    }
  }

  /**
   * Cached catalog; fetched on first use and after list_changed (single-flight). `caller`: whom
   * it is for; per-user OAuth upstreams keep one per principal, listed with that principal's token.
   */
  async catalog(u: UpstreamSnapshot, caller?: CallerScope): Promise<Catalog> {
    const key = upstreamKey(u) + this.credentials.partition(u, caller);
    let entry = this.catalogs.get(key);
    if (!entry) {
      entry = { value: null, pending: null, stale: true, caller, readAt: Date.now() };
      this.catalogs.set(key, entry);
    }
    entry.readAt = Date.now();
    if (caller) entry.caller = caller;
    if (entry.value && !entry.stale) return entry.value;
    if (entry.pending) return await entry.pending;
    this.assertReachable(u);
    const e = entry;
    e.stale = false;
    e.pending = this.fetchCatalog(u, caller)
      .then((c) => {
        e.value = c;
        for (const l of this.catalogListeners) {
          try {
            l(u, c);
          } catch (err) {
            this.logger.error({ err }, "catalog listener failed");
          }
        }
        return c;
      })
      .catch((err) => {
        e.stale = true;
        throw err;
      })
      .finally(() => {
        e.pending = null;
      });
    return await e.pending;
  }

  /** Refetches a catalog older than `ms` (a name the caller saw elsewhere may be new upstream). */
  async refreshIfOlder(u: UpstreamSnapshot, ms: number, caller?: CallerScope): Promise<Catalog> {
    const entry = this.catalogs.get(upstreamKey(u) + this.credentials.partition(u, caller));
    if (entry?.value && Date.now() - entry.value.fetchedAt > ms) entry.stale = true;
    return await this.catalog(u, caller);
  }

  /** The cached catalog, if any, without contacting the upstream. */
  cachedCatalog(u: UpstreamSnapshot, caller?: CallerScope): Catalog | null {
    return this.catalogs.get(upstreamKey(u) + this.credentials.partition(u, caller))?.value ?? null;
  }

  private async fetchCatalog(u: UpstreamSnapshot, caller: CallerScope | undefined): Promise<Catalog> {
    return await this.withShared(u, (conn) => this.listCatalog(u, conn), caller);
  }

  private async listCatalog(u: UpstreamSnapshot, conn: UpstreamConnection): Promise<Catalog> {
    const caps = (conn.client.getServerCapabilities() ?? {}) as Json;
    const timeout = Math.min(this.timeoutOf(u), 30_000);
    const listAll = async (method: string, field: string): Promise<Json[]> => {
      const out: Json[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < MAX_PAGES; page++) {
        const result = (await conn.client.request(
          { method: method as "tools/list", params: cursor ? { cursor } : {} },
          { timeout },
        )) as unknown as Json;
        const items = result[field];
        if (Array.isArray(items)) out.push(...(items as Json[]));
        cursor = typeof result.nextCursor === "string" && result.nextCursor ? result.nextCursor : undefined;
        if (!cursor) break;
      }
      return out;
    };
    const [tools, prompts, resources, resourceTemplates] = await Promise.all([
      caps.tools ? listAll("tools/list", "tools") : [],
      caps.prompts ? listAll("prompts/list", "prompts") : [],
      caps.resources ? listAll("resources/list", "resources") : [],
      caps.resources ? listAll("resources/templates/list", "resourceTemplates").catch(() => []) : [],
    ]).catch((err: unknown) => {
      if (isSessionGone(err, false)) throw err;
      throw toAppError(err, u, "request");
    });
    this.touch(conn);
    return {
      tools,
      prompts,
      resources,
      resourceTemplates,
      capabilities: caps,
      instructions: conn.client.getInstructions(),
      fetchedAt: Date.now(),
      toolNames: new Set(tools.map((t) => String(t.name))),
      promptNames: new Set(prompts.map((p) => String(p.name))),
    };
  }

  /** Drops shared connections and catalogs of upstreams whose configuration is gone or changed. */
  retain(liveKeys: Set<string>, tenantUpstreamIds: Set<string>): void {
    const gone = (key: string) => {
      const id = key.slice(0, key.indexOf(":"));
      return tenantUpstreamIds.has(id) && !liveKeys.has(baseKey(key));
    };
    for (const [key, p] of this.shared) {
      if (gone(key)) {
        this.shared.delete(key);
        void p.then((c) => c.close()).catch(() => {});
      }
    }
    for (const key of this.catalogs.keys()) if (gone(key)) this.catalogs.delete(key);
    for (const [key, e] of this.endpoints) {
      if (gone(key)) {
        this.endpoints.delete(key);
        e.close();
      }
    }
  }

  /** Per-user upstreams: closes principals' idle node-level connections and forgets unread catalogs. */
  private sweepPerUser(): void {
    const now = Date.now();
    for (const [key, p] of this.shared) {
      if (baseKey(key) === key) continue;
      void p
        .then((c) => {
          if (now - c.lastUsedAt > PER_USER_IDLE_MS && this.shared.get(key) === p) {
            this.shared.delete(key);
            void c.close();
          }
        })
        .catch(() => {});
    }
    for (const [key, e] of this.catalogs) {
      if (baseKey(key) !== key && !e.pending && now - e.readAt > PER_USER_CATALOG_TTL_MS)
        this.catalogs.delete(key);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.sweeper) clearInterval(this.sweeper);
    for (const t of this.debounce.values()) clearTimeout(t);
    this.debounce.clear();
    const conns = [...this.shared.values()];
    this.shared.clear();
    await Promise.allSettled(conns.map(async (p) => (await p).close()));
    for (const [conn] of this.lifetimes) this.clearLifetime(conn);
    for (const e of this.endpoints.values()) e.close();
    this.endpoints.clear();
  }
}
