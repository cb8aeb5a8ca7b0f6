import { AppError, ErrorCode, type UpstreamSnapshot } from "@gatehouse/shared";
import type { Sealer } from "@gatehouse/shared/node";
import type { ClientCapabilities, PriorDiscovery } from "@modelcontextprotocol/client";
import type { Logger } from "pino";
import type { GatewayConfig } from "../config/gateway.config.js";
import type { UpstreamSessionRef } from "../sessions/session-store.js";
import { upstreamFingerprint } from "../tenancy/tenant-state.js";
import {
  connectUpstream,
  isSessionGone,
  toAppError,
  type UpstreamConnection,
  type UpstreamHandlers,
} from "./upstream-client.js";

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
}

const MAX_PAGES = 50;

/** Key of one upstream's configuration: a config change gives a new key, so old connections age out. */
export function upstreamKey(u: UpstreamSnapshot): string {
  return `${u.id}:${upstreamFingerprint(u)}`;
}

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
  /** Last snapshot seen per key, to name the upstream in change events. */
  private readonly snapshots = new Map<string, UpstreamSnapshot>();
  private readonly debounce = new Map<string, NodeJS.Timeout>();
  private closed = false;

  constructor(
    private readonly config: GatewayConfig,
    private readonly sealer: Sealer | null,
    private readonly logger: Logger,
  ) {}

  onCatalogChange(fn: (u: UpstreamSnapshot, kind: CatalogChangeKind) => void): void {
    this.changeListeners.add(fn);
  }

  timeoutOf(u: UpstreamSnapshot): number {
    return u.timeoutMs ?? this.config.upstreamTimeoutMs;
  }

  /** Fails fast while an upstream is in the negative cache. */
  assertReachable(u: UpstreamSnapshot): void {
    const d = this.down.get(upstreamKey(u));
    if (d && d.until > Date.now()) throw d.error;
  }

  /** Opens a connection with the cached era verdict, recording failures in the negative cache. */
  async connect(
    u: UpstreamSnapshot,
    capabilities: ClientCapabilities,
    handlers: UpstreamHandlers,
    resume?: UpstreamSessionRef,
  ): Promise<UpstreamConnection> {
    if (this.closed) throw new AppError(ErrorCode.UPSTREAM_UNAVAILABLE, "The gateway node is shutting down.");
    const key = upstreamKey(u);
    this.snapshots.set(key, u);
    this.assertReachable(u);
    const prior = this.priors.get(key);
    try {
      const conn = await connectUpstream({
        upstream: u,
        sealer: this.sealer,
        allowStdio: this.config.allowStdio,
        connectTimeoutMs: this.config.upstreamConnectTimeoutMs,
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
      });
      const connRef = conn;
      const verdict = conn.prior();
      if (verdict) this.priors.set(key, verdict);
      this.down.delete(key);
      if (u.transport === "stdio") this.boundLifetime(conn);
      return conn;
    } catch (err) {
      const e = toAppError(err, u, "connect");
      // Configuration problems (stdio disabled, no URL) and outages alike fail fast for a while.
      if (e.code === ErrorCode.UPSTREAM_UNAVAILABLE && this.config.upstreamRetryAfterMs > 0) {
        this.down.set(key, { until: Date.now() + this.config.upstreamRetryAfterMs, error: e });
      }
      throw e;
    }
  }

  /** Marks a stdio connection as used (restarts its idle timer). */
  touch(conn: UpstreamConnection): void {
    conn.lastUsedAt = Date.now();
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
    const entry = this.catalogs.get(key);
    if (entry) entry.stale = true;
    const debounceKey = `${key}:${kind}`;
    if (this.debounce.has(debounceKey)) return;
    const timer = setTimeout(() => {
      this.debounce.delete(debounceKey);
      void this.catalog(u)
        .catch(() => null)
        .then(() => {
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

  /** The node's shared connection to an upstream (catalogs, stateless callers). */
  async sharedConnection(u: UpstreamSnapshot): Promise<UpstreamConnection> {
    const key = upstreamKey(u);
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
    );
    this.shared.set(key, p);
    p.catch(() => {
      if (this.shared.get(key) === p) this.shared.delete(key);
    });
    return await p;
  }

  /** Runs `fn` on the shared connection; if the upstream forgot that session, reconnects once. */
  async withShared<T>(u: UpstreamSnapshot, fn: (c: UpstreamConnection) => Promise<T>): Promise<T> {
    const conn = await this.sharedConnection(u);
    try {
      return await fn(conn);
    } catch (err) {
      if (!isSessionGone(err, false)) throw err;
      const key = upstreamKey(u);
      const current = this.shared.get(key);
      if (current && (await current.catch(() => null)) === conn) this.shared.delete(key);
      void conn.close();
      return await fn(await this.sharedConnection(u));
    }
  }

  /** Cached catalog; fetched on first use and after list_changed (single-flight). */
  async catalog(u: UpstreamSnapshot): Promise<Catalog> {
    const key = upstreamKey(u);
    let entry = this.catalogs.get(key);
    if (!entry) {
      entry = { value: null, pending: null, stale: true };
      this.catalogs.set(key, entry);
    }
    if (entry.value && !entry.stale) return entry.value;
    if (entry.pending) return await entry.pending;
    this.assertReachable(u);
    const e = entry;
    e.stale = false;
    e.pending = this.fetchCatalog(u)
      .then((c) => {
        e.value = c;
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
  async refreshIfOlder(u: UpstreamSnapshot, ms: number): Promise<Catalog> {
    const entry = this.catalogs.get(upstreamKey(u));
    if (entry?.value && Date.now() - entry.value.fetchedAt > ms) entry.stale = true;
    return await this.catalog(u);
  }

  /** The cached catalog, if any, without contacting the upstream. */
  cachedCatalog(u: UpstreamSnapshot): Catalog | null {
    return this.catalogs.get(upstreamKey(u))?.value ?? null;
  }

  private async fetchCatalog(u: UpstreamSnapshot): Promise<Catalog> {
    return await this.withShared(u, (conn) => this.listCatalog(u, conn));
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
    for (const [key, p] of this.shared) {
      const id = key.slice(0, key.indexOf(":"));
      if (tenantUpstreamIds.has(id) && !liveKeys.has(key)) {
        this.shared.delete(key);
        void p.then((c) => c.close()).catch(() => {});
        this.catalogs.delete(key);
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.debounce.values()) clearTimeout(t);
    this.debounce.clear();
    const conns = [...this.shared.values()];
    this.shared.clear();
    await Promise.allSettled(conns.map(async (p) => (await p).close()));
    for (const [conn] of this.lifetimes) this.clearLifetime(conn);
  }
}
