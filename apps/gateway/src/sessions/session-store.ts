import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";

/** How a node reconnects to one upstream on behalf of a session (architecture.md, step 3). */
export interface UpstreamSessionRef {
  era: "legacy" | "modern";
  /** The upstream's own `Mcp-Session-Id` (legacy Streamable HTTP upstreams). */
  sessionId?: string;
  protocolVersion?: string;
  /** The upstream's `server/discover` result (modern upstreams), to reconnect with zero round trips. */
  discover?: unknown;
  /** The upstream's capabilities from initialize (HTTP links resume without a handshake). */
  capabilities?: Record<string, unknown>;
}

/** Everything any node needs to go on serving a session it has never seen. */
export interface SessionRecord {
  id: string;
  tenantId: string;
  /** The principal the session is bound to; another principal presenting the id gets 404. */
  principalId: string;
  /** The upstream name of `/t/{tenant}/mcp/{upstream}`, or null for the aggregate endpoint. */
  upstream: string | null;
  protocolVersion: string;
  clientCapabilities: Record<string, unknown>;
  clientInfo: Record<string, unknown> | null;
  /** Minimum log level the client asked for (logging/setLevel), null for none. */
  logLevel: string | null;
  /** Keyed by upstream id. */
  upstreams: Record<string, UpstreamSessionRef>;
  createdAt: number;
}

/**
 * Where sessions live so that any node can serve any session: Redis in distributed mode, memory in
 * embedded mode. `touch` refreshes the TTL and says whether the session still exists.
 */
export interface SessionStore {
  get(id: string): Promise<SessionRecord | null>;
  put(record: SessionRecord): Promise<void>;
  touch(id: string): Promise<boolean>;
  delete(id: string): Promise<void>;
  /**
   * Counts `record` against its principal's open sessions in its tenant: true (and counted) while
   * fewer than `cap` of them still exist, false when the cap is reached. Shared by every node.
   */
  claimSlot(record: SessionRecord, cap: number): Promise<boolean>;
  /** Uncounts a session that ended (DELETE). Expired ones are uncounted lazily by `claimSlot`. */
  releaseSlot(record: SessionRecord): Promise<void>;
  /**
   * Delivers a message to another node (server-to-client responses that arrived on the wrong node).
   * Optional: a single-node store has nowhere to send it.
   */
  publishToNode?(nodeId: string, message: unknown): Promise<void>;
  subscribeNode?(nodeId: string, handler: (message: unknown) => void): Promise<() => Promise<void>>;
  /** False while a shared store is unreachable (this node then serves only the sessions it holds). */
  readonly connected?: boolean;
  close(): Promise<void>;
}

export class MemorySessionStore implements SessionStore {
  private readonly records = new Map<string, { record: SessionRecord; expiresAt: number }>();
  private readonly byPrincipal = new Map<string, Set<string>>();

  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly ttlSeconds = 3600,
    /** How often expired records are swept (they would otherwise stay until someone asked for them). */
    sweepMs = 60_000,
  ) {
    this.sweeper = setInterval(() => this.sweep(), sweepMs);
    this.sweeper.unref();
  }

  /** Records held (expired ones until the next sweep). */
  get size(): number {
    return this.records.size;
  }

  /** Forgets expired records and their principals' slots. */
  sweep(): void {
    const now = Date.now();
    for (const [id, e] of this.records) {
      if (e.expiresAt > now) continue;
      this.records.delete(id);
      const key = `${e.record.tenantId}\u0000${e.record.principalId}`;
      const ids = this.byPrincipal.get(key);
      ids?.delete(id);
      if (ids?.size === 0) this.byPrincipal.delete(key);
    }
  }

  async get(id: string): Promise<SessionRecord | null> {
    const e = this.records.get(id);
    if (!e) return null;
    if (e.expiresAt <= Date.now()) {
      this.records.delete(id);
      return null;
    }
    return structuredClone(e.record);
  }

  async put(record: SessionRecord): Promise<void> {
    this.records.set(record.id, {
      record: structuredClone(record),
      expiresAt: Date.now() + this.ttlSeconds * 1000,
    });
  }

  async touch(id: string): Promise<boolean> {
    const e = this.records.get(id);
    if (!e || e.expiresAt <= Date.now()) {
      this.records.delete(id);
      return false;
    }
    e.expiresAt = Date.now() + this.ttlSeconds * 1000;
    return true;
  }

  async delete(id: string): Promise<void> {
    this.records.delete(id);
  }

  async claimSlot(record: SessionRecord, cap: number): Promise<boolean> {
    const key = `${record.tenantId}\u0000${record.principalId}`;
    let ids = this.byPrincipal.get(key);
    if (!ids) {
      ids = new Set();
      this.byPrincipal.set(key, ids);
    }
    if (ids.size >= cap) {
      const now = Date.now();
      for (const id of ids) {
        const e = this.records.get(id);
        if (!e || e.expiresAt <= now) ids.delete(id);
      }
      if (ids.size >= cap) return false;
    }
    ids.add(record.id);
    return true;
  }

  async releaseSlot(record: SessionRecord): Promise<void> {
    const key = `${record.tenantId}\u0000${record.principalId}`;
    const ids = this.byPrincipal.get(key);
    ids?.delete(record.id);
    if (ids?.size === 0) this.byPrincipal.delete(key);
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.records.clear();
    this.byPrincipal.clear();
  }
}

/** The slice of a logger the store needs (pino fits). */
export interface SessionStoreLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface RedisSessionStoreOptions {
  url: string;
  keyPrefix: string;
  ttlSeconds: number;
  /** Names this node's marker key (see `RedisSessionStore`); default a random id. */
  nodeId?: string;
  logger?: SessionStoreLogger;
  /** Sessions written back to a Redis that had lost them (after a restart or flush). */
  onReasserted?: (count: number) => void;
}

/** Thrown while Redis is unreachable for what only Redis can answer: a new session, one this node does not hold. */
export class SessionStoreUnavailableError extends Error {
  constructor() {
    super("The session store (Redis) is unreachable.");
  }
}

// Counts a session against its principal's set unless `cap` live ones are there already. Members
// whose session key has expired are dropped first, only when the set looks full (so the common
// case is SCARD + SADD). It reads session keys it derives from ARGV: a single Redis, not a cluster.
const CLAIM_SLOT_LUA = `
local cap = tonumber(ARGV[2])
if redis.call('SCARD', KEYS[1]) >= cap then
  for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do
    if redis.call('EXISTS', ARGV[3] .. m) == 0 then redis.call('SREM', KEYS[1], m) end
  end
  if redis.call('SCARD', KEYS[1]) >= cap then return 0 end
end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
`;

// Refreshes a session's TTL. When the key is missing it tells apart "ended" (0: deleted by a node,
// or expired) from "Redis lost its data" (-1: this node's marker is gone too), in one round trip.
const TOUCH_LUA = `
if redis.call('EXPIRE', KEYS[1], ARGV[1]) == 1 then return 1 end
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
return -1
`;

/** A principal's session set outlives idle sessions by far: sessions in use are touched, the set is not. */
const SLOT_SET_TTL_SECONDS = 7 * 24 * 3600;
/** The node's marker lives this long unless refreshed; the periodic check refreshes it. */
const MARKER_TTL_SECONDS = 600;
const CHECK_INTERVAL_MS = 30_000;
const REASSERT_BATCH = 500;

type TouchCommand = (key: string, marker: string, ttl: number) => Promise<number>;

/**
 * Sessions as JSON strings under `{prefix}session:{id}` with a TTL refreshed on use.
 *
 * Redis is shared state, not the only copy: the store keeps the records of the sessions this node
 * serves (`held`, the same objects the registry holds, dropped after a TTL without use), so that
 * - while Redis is unreachable, held sessions go on (`get`/`touch` answer from them, `put` and
 *   `delete` are written once Redis is back); only what needs Redis (a new session, a session this
 *   node does not hold) fails, with `SessionStoreUnavailableError`;
 * - when Redis comes back without its data (restarted empty, flushed, failed over to an empty
 *   replica), the node writes its held sessions back ("re-asserts" them) instead of dropping them.
 *   It knows the data was lost by its marker key `{prefix}session-holder:{nodeId}`, set by this
 *   node only: a session key missing while the marker is there was ended by someone (DELETE on
 *   another node, expiry); both missing means Redis lost them. The check runs on every reconnect,
 *   every 30 s, and in the same round trip as each touch that finds its key missing.
 * Redis must not evict keys (`maxmemory-policy noeviction`): an evicted session looks ended.
 */
export class RedisSessionStore implements SessionStore {
  private readonly redis: Redis;
  private readonly touchCmd: TouchCommand;
  private sub: Redis | null = null;
  private readonly nodeHandlers = new Map<string, (message: unknown) => void>();
  private readonly held = new Map<string, { record: SessionRecord; seenAt: number }>();
  /** Held sessions changed while Redis was away: written when it is back. */
  private readonly dirty = new Set<string>();
  /** DELETEs and slot releases made while Redis was away. */
  private readonly pendingDeletes = new Set<string>();
  private readonly pendingReleases = new Map<string, string>();
  private readonly marker: string;
  private readonly endedChannel: string;
  private readonly timer: NodeJS.Timeout;
  private reasserting: Promise<void> | null = null;
  private everReady = false;
  private wasDown = false;
  private closed = false;

  constructor(private readonly opts: RedisSessionStoreOptions) {
    this.redis = new Redis(opts.url, {
      lazyConnect: false,
      maxRetriesPerRequest: 2,
      enableOfflineQueue: true,
      // Back within a second of Redis: new sessions wait for it (ioredis' default backs off to 2 s).
      retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 5), 1000),
    });
    this.redis.on("error", () => {
      // connection errors surface as `connected` false and failed commands; ioredis reconnects on its own
    });
    this.redis.on("close", () => {
      if (!this.everReady || this.wasDown || this.closed) return;
      this.wasDown = true;
      opts.logger?.warn(
        {},
        "session store: Redis unreachable; serving the sessions this node holds, new sessions refused until it is back",
      );
    });
    this.redis.on("ready", () => void this.onReady());
    // ioredis' defineCommand sends EVALSHA and falls back to EVAL on NOSCRIPT (after a Redis restart).
    this.redis.defineCommand("gatehouseSessionTouch", { numberOfKeys: 2, lua: TOUCH_LUA });
    this.touchCmd = (
      this.redis as unknown as { gatehouseSessionTouch: TouchCommand }
    ).gatehouseSessionTouch.bind(this.redis);
    this.marker = `${opts.keyPrefix}session-holder:${opts.nodeId ?? randomBytes(8).toString("hex")}`;
    this.endedChannel = `${opts.keyPrefix}sessions:ended`;
    this.timer = setInterval(() => void this.check(), CHECK_INTERVAL_MS);
    this.timer.unref();
  }

  /** True while Redis answers. */
  get connected(): boolean {
    return this.redis.status === "ready";
  }

  /** Redis was up once and is not now: answer from held sessions at once rather than queue commands. */
  private get down(): boolean {
    return this.everReady && this.redis.status !== "ready";
  }

  /** Sessions whose records this node keeps (for tests and metrics). */
  get heldCount(): number {
    return this.held.size;
  }

  private key(id: string): string {
    return `${this.opts.keyPrefix}session:${id}`;
  }

  private hold(record: SessionRecord): void {
    this.held.set(record.id, { record, seenAt: Date.now() });
  }

  async get(id: string): Promise<SessionRecord | null> {
    const h = this.held.get(id);
    if (this.down) {
      if (h) return h.record;
      throw new SessionStoreUnavailableError();
    }
    let raw: string | null;
    try {
      raw = await this.redis.get(this.key(id));
    } catch (err) {
      if (h) return h.record;
      throw err;
    }
    if (raw === null) {
      if (!h) return null;
      // Held here but gone from Redis: ended elsewhere, or lost with Redis's data.
      if (await this.markerLost()) {
        await this.reassert();
        return this.held.get(id)?.record ?? null;
      }
      this.held.delete(id);
      return null;
    }
    let record: SessionRecord;
    try {
      record = JSON.parse(raw) as SessionRecord;
    } catch {
      return null;
    }
    this.hold(record);
    return record;
  }

  async put(record: SessionRecord): Promise<void> {
    const known = this.held.has(record.id);
    if (this.down) {
      if (!known) throw new SessionStoreUnavailableError();
      this.hold(record);
      this.dirty.add(record.id);
      return;
    }
    try {
      await this.redis.set(this.key(record.id), JSON.stringify(record), "EX", this.opts.ttlSeconds);
    } catch (err) {
      if (!known) throw err;
      this.hold(record);
      this.dirty.add(record.id);
      return;
    }
    this.hold(record);
    this.dirty.delete(record.id);
  }

  async touch(id: string): Promise<boolean> {
    const h = this.held.get(id);
    if (this.down) {
      if (!h) throw new SessionStoreUnavailableError();
      h.seenAt = Date.now();
      return true;
    }
    let r: number;
    try {
      r = await this.touchCmd(this.key(id), this.marker, this.opts.ttlSeconds);
    } catch (err) {
      if (!h) throw err;
      h.seenAt = Date.now();
      return true;
    }
    if (r === 1) {
      if (h) h.seenAt = Date.now();
      return true;
    }
    if (r === -1) {
      await this.reassert();
      return this.held.has(id);
    }
    this.held.delete(id);
    this.dirty.delete(id);
    return false;
  }

  async delete(id: string): Promise<void> {
    this.held.delete(id);
    this.dirty.delete(id);
    if (this.down) {
      this.pendingDeletes.add(id);
      return;
    }
    try {
      await this.redis.del(this.key(id));
    } catch {
      this.pendingDeletes.add(id);
      return;
    }
    // Other nodes forget their copy, so a later re-assert cannot bring the session back.
    this.redis.publish(this.endedChannel, id).catch(() => {});
  }

  private slotKey(record: SessionRecord): string {
    return `${this.opts.keyPrefix}psessions:${record.tenantId}:${record.principalId}`;
  }

  async claimSlot(record: SessionRecord, cap: number): Promise<boolean> {
    if (this.down) throw new SessionStoreUnavailableError();
    const r = await this.redis.eval(
      CLAIM_SLOT_LUA,
      1,
      this.slotKey(record),
      record.id,
      cap,
      `${this.opts.keyPrefix}session:`,
      SLOT_SET_TTL_SECONDS,
    );
    return r === 1;
  }

  async releaseSlot(record: SessionRecord): Promise<void> {
    if (this.down) {
      this.pendingReleases.set(record.id, this.slotKey(record));
      return;
    }
    await this.redis.srem(this.slotKey(record), record.id);
  }

  private channel(nodeId: string): string {
    return `${this.opts.keyPrefix}node:${nodeId}`;
  }

  async publishToNode(nodeId: string, message: unknown): Promise<void> {
    await this.redis.publish(this.channel(nodeId), JSON.stringify(message));
  }

  async subscribeNode(nodeId: string, handler: (message: unknown) => void): Promise<() => Promise<void>> {
    if (!this.sub) {
      this.sub = this.redis.duplicate();
      this.sub.on("error", () => {});
      this.sub.on("message", (channel: string, raw: string) => {
        if (channel === this.endedChannel) {
          this.held.delete(raw);
          this.dirty.delete(raw);
          return;
        }
        const h = this.nodeHandlers.get(channel);
        if (!h) return;
        try {
          h(JSON.parse(raw) as unknown);
        } catch {
          // ignore malformed relay messages
        }
      });
      await this.sub.subscribe(this.endedChannel);
    }
    const channel = this.channel(nodeId);
    this.nodeHandlers.set(channel, handler);
    await this.sub.subscribe(channel);
    return async () => {
      this.nodeHandlers.delete(channel);
      await this.sub?.unsubscribe(channel).catch(() => {});
    };
  }

  async ping(): Promise<boolean> {
    try {
      return (await this.redis.ping()) === "PONG";
    } catch {
      return false;
    }
  }

  /** Redis is (back) up: write what waited for it, then re-assert held sessions if Redis lost them. */
  private async onReady(): Promise<void> {
    const reconnect = this.everReady;
    this.everReady = true;
    try {
      if (reconnect) await this.writePending();
      await this.check();
      if (this.wasDown) {
        this.wasDown = false;
        this.opts.logger?.info({ held: this.held.size }, "session store: Redis is back");
      }
    } catch (err) {
      this.opts.logger?.warn({ err: (err as Error).message }, "session store: could not catch up with Redis");
    }
  }

  private async writePending(): Promise<void> {
    const p = this.redis.pipeline();
    for (const id of this.pendingDeletes) p.del(this.key(id));
    for (const [id, slot] of this.pendingReleases) p.srem(slot, id);
    for (const id of this.dirty) {
      const h = this.held.get(id);
      if (h) p.set(this.key(id), JSON.stringify(h.record), "EX", this.opts.ttlSeconds);
    }
    if (p.length === 0) return;
    await execOrThrow(p);
    for (const id of this.pendingDeletes) this.redis.publish(this.endedChannel, id).catch(() => {});
    this.pendingDeletes.clear();
    this.pendingReleases.clear();
    this.dirty.clear();
  }

  /** Forgets held sessions unused for a TTL; re-asserts the rest if Redis lost them. */
  private async check(): Promise<void> {
    if (this.closed || !this.connected) return;
    const oldest = Date.now() - this.opts.ttlSeconds * 1000;
    for (const [id, h] of this.held) if (h.seenAt < oldest) this.held.delete(id);
    try {
      if (await this.markerLost()) await this.reassert();
    } catch (err) {
      this.opts.logger?.warn({ err: (err as Error).message }, "session store: marker check failed");
    }
  }

  /** True when this node's marker is gone: Redis lost its data since the node last wrote it. */
  private async markerLost(): Promise<boolean> {
    return (await this.redis.expire(this.marker, MARKER_TTL_SECONDS)) === 0;
  }

  private reassert(): Promise<void> {
    this.reasserting ??= this.writeBack().finally(() => {
      this.reasserting = null;
    });
    return this.reasserting;
  }

  /**
   * Writes every held session back (NX: a newer copy another node wrote first wins), counts it in
   * its principal's slot set again, then sets the marker: last, so an interrupted write-back is
   * done again at the next check.
   */
  private async writeBack(): Promise<void> {
    let n = 0;
    const entries = [...this.held.values()];
    for (let i = 0; i < entries.length; i += REASSERT_BATCH) {
      const p = this.redis.pipeline();
      for (const { record } of entries.slice(i, i + REASSERT_BATCH)) {
        p.set(this.key(record.id), JSON.stringify(record), "EX", this.opts.ttlSeconds, "NX");
        const slot = this.slotKey(record);
        p.sadd(slot, record.id);
        p.expire(slot, SLOT_SET_TTL_SECONDS);
        n++;
      }
      await execOrThrow(p);
    }
    await this.redis.set(this.marker, "1", "EX", MARKER_TTL_SECONDS);
    if (n > 0) {
      this.opts.logger?.warn(
        { sessions: n },
        "session store: Redis had lost this node's sessions (restarted empty or flushed); wrote them back",
      );
      this.opts.onReasserted?.(n);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    // The marker goes with the node; its sessions stay for other nodes to serve.
    if (this.connected) await this.redis.del(this.marker).catch(() => {});
    await Promise.allSettled([this.redis.quit(), this.sub?.quit()]);
  }
}

async function execOrThrow(p: ReturnType<Redis["pipeline"]>): Promise<void> {
  const results = await p.exec();
  const failed = results?.find(([err]) => err);
  if (failed?.[0]) throw failed[0];
}
