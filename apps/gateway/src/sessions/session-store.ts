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
  close(): Promise<void>;
}

export class MemorySessionStore implements SessionStore {
  private readonly records = new Map<string, { record: SessionRecord; expiresAt: number }>();
  private readonly byPrincipal = new Map<string, Set<string>>();

  constructor(private readonly ttlSeconds = 3600) {}

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
    this.records.clear();
    this.byPrincipal.clear();
  }
}

export interface RedisSessionStoreOptions {
  url: string;
  keyPrefix: string;
  ttlSeconds: number;
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

/** A principal's session set outlives idle sessions by far: sessions in use are touched, the set is not. */
const SLOT_SET_TTL_SECONDS = 7 * 24 * 3600;

/** Sessions as JSON strings under `{prefix}session:{id}` with a TTL refreshed on use. */
export class RedisSessionStore implements SessionStore {
  private readonly redis: Redis;
  private sub: Redis | null = null;
  private readonly nodeHandlers = new Map<string, (message: unknown) => void>();

  constructor(private readonly opts: RedisSessionStoreOptions) {
    this.redis = new Redis(opts.url, {
      lazyConnect: false,
      maxRetriesPerRequest: 2,
      enableOfflineQueue: true,
    });
    this.redis.on("error", () => {
      // connection errors surface as failed commands; ioredis reconnects on its own
    });
  }

  private key(id: string): string {
    return `${this.opts.keyPrefix}session:${id}`;
  }

  async get(id: string): Promise<SessionRecord | null> {
    const raw = await this.redis.get(this.key(id));
    if (raw === null) return null;
    try {
      return JSON.parse(raw) as SessionRecord;
    } catch {
      return null;
    }
  }

  async put(record: SessionRecord): Promise<void> {
    await this.redis.set(this.key(record.id), JSON.stringify(record), "EX", this.opts.ttlSeconds);
  }

  async touch(id: string): Promise<boolean> {
    return (await this.redis.expire(this.key(id), this.opts.ttlSeconds)) === 1;
  }

  async delete(id: string): Promise<void> {
    await this.redis.del(this.key(id));
  }

  private slotKey(record: SessionRecord): string {
    return `${this.opts.keyPrefix}psessions:${record.tenantId}:${record.principalId}`;
  }

  async claimSlot(record: SessionRecord, cap: number): Promise<boolean> {
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
        const h = this.nodeHandlers.get(channel);
        if (!h) return;
        try {
          h(JSON.parse(raw) as unknown);
        } catch {
          // ignore malformed relay messages
        }
      });
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

  async close(): Promise<void> {
    await Promise.allSettled([this.redis.quit(), this.sub?.quit()]);
  }
}
