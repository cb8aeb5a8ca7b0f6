import type { PrismaClient } from "@gatehouse/db";
import { type Bus, BusChannel, ConfigEventSchema, type TenantSnapshot } from "@gatehouse/shared";
import type { Logger } from "pino";
import { buildTenantState, isUuid, loadTenantSnapshot, type TenantState } from "./tenant-state.js";

/** How long a request waits for an announced newer snapshot before it is served with the old one. */
const RELOAD_WAIT_MS = 2000;

export type TenantChangeListener = (
  tenantId: string,
  next: TenantState | null,
  prev: TenantState | null,
) => void;

export interface ConfigCacheOptions {
  prisma: PrismaClient;
  bus: Bus;
  publicUrl: string;
  logger: Logger;
  /** Periodic version re-check besides the bus (0 = off). */
  recheckMs?: number;
  /** How long "no such tenant" is remembered, so garbage paths do not reach the database each time. */
  negativeTtlMs?: number;
  /** Test seam: replaces the loader. */
  load?: (ref: string) => Promise<TenantSnapshot | null>;
}

/**
 * Tenant snapshots in memory (architecture.md, "Config propagation"): loaded on first use by slug
 * or id (single-flight), reloaded when the bus announces a newer version, re-checked with one query
 * on bus reconnect (and periodically), dropped when the tenant is deleted. Lookups of a loaded
 * tenant never touch the database.
 */
export class TenantConfigCache {
  private readonly byId = new Map<string, TenantState>();
  private readonly idBySlug = new Map<string, string>();
  private readonly inflight = new Map<string, Promise<TenantState | null>>();
  private readonly reloading = new Map<string, Promise<void>>();
  /** Highest version announced per tenant while a reload ran, so a newer event is not lost. */
  private readonly wanted = new Map<string, number>();
  private readonly missing = new Map<string, number>();
  private readonly listeners = new Set<TenantChangeListener>();
  private unsubscribe: (() => Promise<void>) | null = null;
  private recheckTimer: NodeJS.Timeout | null = null;
  private readonly load: (ref: string) => Promise<TenantSnapshot | null>;
  private readonly negativeTtlMs: number;
  private closed = false;

  constructor(private readonly opts: ConfigCacheOptions) {
    this.load = opts.load ?? ((ref) => loadTenantSnapshot(opts.prisma, ref));
    this.negativeTtlMs = opts.negativeTtlMs ?? 2000;
  }

  async start(): Promise<void> {
    this.unsubscribe = await this.opts.bus.subscribe(BusChannel.config, (msg) => this.onEvent(msg));
    this.opts.bus.onReconnect(() => {
      this.opts.logger.info("config bus reconnected; re-checking tenant versions");
      void this.recheck();
    });
    if (this.opts.recheckMs && this.opts.recheckMs > 0) {
      this.recheckTimer = setInterval(() => void this.recheck(), this.opts.recheckMs);
      this.recheckTimer.unref();
    }
  }

  /**
   * Runs both lookup shapes once (by slug, by id) for tenants that do not exist, so that the ORM's
   * query plans are compiled before the first real load or bus-driven reload needs them: the first
   * reload after start otherwise took ~200 ms, the p99 of propagation in the benchmark.
   */
  async warm(): Promise<void> {
    await Promise.allSettled([
      this.load("gatehouse-warm-up"),
      this.load("00000000-0000-4000-8000-000000000000"),
    ]);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.recheckTimer) clearInterval(this.recheckTimer);
    await this.unsubscribe?.().catch(() => {});
    await Promise.allSettled([...this.reloading.values(), ...this.inflight.values()]);
  }

  onChange(listener: TenantChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get size(): number {
    return this.byId.size;
  }

  /** Versions applied on this node, `{tenantId: version}` (for the node registry). */
  versions(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [id, s] of this.byId) out[id] = s.version;
    return out;
  }

  /** The cached state, without loading. */
  peek(ref: string): TenantState | undefined {
    // An id-shaped reference is an id and nothing else, so no slug can stand for another tenant's id.
    if (isUuid(ref)) return this.byId.get(ref.toLowerCase());
    const id = this.idBySlug.get(ref);
    return id === undefined ? undefined : this.byId.get(id);
  }

  /** The tenant by slug or id, loaded on first use; null when it does not exist. */
  async get(ref: string): Promise<TenantState | null> {
    const hit = this.peek(ref);
    if (hit) {
      // A newer version was announced and is loading: serve this request with it (bounded wait),
      // so a revocation is in force from the moment the event arrives.
      const pending = this.reloading.get(hit.id);
      if (!pending) return hit;
      await Promise.race([pending, new Promise((r) => setTimeout(r, RELOAD_WAIT_MS).unref())]);
      return this.peek(hit.id) ?? null;
    }
    const missAt = this.missing.get(ref);
    if (missAt !== undefined && Date.now() - missAt < this.negativeTtlMs) return null;
    let p = this.inflight.get(ref);
    if (!p) {
      p = this.loadAndStore(ref).finally(() => this.inflight.delete(ref));
      this.inflight.set(ref, p);
    }
    return await p;
  }

  private async loadAndStore(ref: string): Promise<TenantState | null> {
    if (!isUuid(ref) && !/^[a-z0-9][a-z0-9-]{0,62}$/.test(ref)) {
      this.rememberMissing(ref);
      return null;
    }
    const snapshot = await this.load(ref);
    if (!snapshot) {
      this.rememberMissing(ref);
      return null;
    }
    // Another load (or a reload) may have stored a newer one meanwhile.
    const existing = this.byId.get(snapshot.tenantId);
    if (existing && existing.version >= snapshot.version) return existing;
    return this.store(snapshot);
  }

  private rememberMissing(ref: string): void {
    if (this.missing.size > 10_000) this.missing.clear();
    this.missing.set(ref, Date.now());
  }

  private store(snapshot: TenantSnapshot): TenantState {
    const prev = this.byId.get(snapshot.tenantId) ?? null;
    const state = buildTenantState(snapshot, this.opts.publicUrl);
    if (state.policyError) {
      this.opts.logger.error(
        { tenantId: state.id, err: state.policyError },
        "stored policy does not compile; tenant runs deny-all",
      );
    }
    if (prev && prev.slug !== state.slug) this.idBySlug.delete(prev.slug);
    this.byId.set(state.id, state);
    this.idBySlug.set(state.slug, state.id);
    this.missing.delete(state.slug);
    this.opts.logger.debug({ tenantId: state.id, version: state.version }, "tenant snapshot applied");
    this.emit(state.id, state, prev);
    return state;
  }

  private drop(tenantId: string): void {
    const prev = this.byId.get(tenantId);
    if (!prev) return;
    this.byId.delete(tenantId);
    this.idBySlug.delete(prev.slug);
    this.emit(tenantId, null, prev);
  }

  private emit(tenantId: string, next: TenantState | null, prev: TenantState | null): void {
    for (const l of this.listeners) {
      try {
        l(tenantId, next, prev);
      } catch (err) {
        this.opts.logger.error({ err, tenantId }, "tenant change listener failed");
      }
    }
  }

  private onEvent(message: unknown): void {
    const parsed = ConfigEventSchema.safeParse(message);
    if (!parsed.success) {
      this.opts.logger.warn("ignoring malformed config event");
      return;
    }
    const { tenantId, version, deleted } = parsed.data;
    this.opts.logger.debug({ tenantId, version, deleted }, "config event");
    // A new or renamed tenant may be one we remembered as missing.
    this.missing.clear();
    if (deleted) {
      this.drop(tenantId);
      return;
    }
    const current = this.byId.get(tenantId);
    if (!current || current.version >= version) return;
    void this.reload(tenantId, version);
  }

  /** Reloads one tenant until the stored version is at least `version` (single-flight per tenant). */
  private async reload(tenantId: string, version: number): Promise<void> {
    this.wanted.set(tenantId, Math.max(version, this.wanted.get(tenantId) ?? 0));
    if (this.reloading.has(tenantId)) return;
    const run = async () => {
      try {
        for (let attempt = 0; attempt < 5 && !this.closed; attempt++) {
          const target = this.wanted.get(tenantId) ?? 0;
          const current = this.byId.get(tenantId);
          if (!current) return;
          if (current.version >= target) return;
          const snapshot = await this.load(tenantId);
          if (!snapshot) {
            this.drop(tenantId);
            return;
          }
          if (snapshot.version > current.version) this.store(snapshot);
          // The event may have outrun the commit it announces; retry shortly if still behind.
          if (snapshot.version < target) await new Promise((r) => setTimeout(r, 50 * (attempt + 1)));
        }
      } catch (err) {
        this.opts.logger.error({ err, tenantId }, "tenant reload failed; keeping the previous snapshot");
      } finally {
        this.reloading.delete(tenantId);
        this.wanted.delete(tenantId);
      }
    };
    const p = run();
    this.reloading.set(tenantId, p);
    await p;
  }

  /** Compares every cached version with the database in one query and reloads stale tenants. */
  async recheck(): Promise<void> {
    if (this.closed || this.byId.size === 0) return;
    const ids = [...this.byId.keys()];
    try {
      const rows = await this.opts.prisma.tenant.findMany({
        where: { id: { in: ids } },
        select: { id: true, configVersion: true },
      });
      const seen = new Map(rows.map((r) => [r.id, r.configVersion]));
      await Promise.all(
        ids.map(async (id) => {
          const v = seen.get(id);
          if (v === undefined) this.drop(id);
          else if (v > (this.byId.get(id)?.version ?? v)) await this.reload(id, v);
        }),
      );
    } catch (err) {
      this.opts.logger.warn({ err }, "tenant version re-check failed");
    }
  }
}
