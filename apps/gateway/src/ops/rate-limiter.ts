import { Redis } from "ioredis";

/** Outcome of one `take`. `remaining` is whole tokens left after this take. */
export interface RateLimitResult {
  ok: boolean;
  /** 0 when ok; otherwise how long until `cost` tokens are back (for `Retry-After` / `data.retryAfterMs`). */
  retryAfterMs: number;
  remaining: number;
}

/**
 * Token buckets keyed by any string (`key:<id>`, `tenant:<id>`, `tool:<tenant>:<upstream>:<tool>` …).
 * A bucket holds `perMinute` tokens and refills continuously at `perMinute` per minute, so a
 * caller may burst up to a minute's allowance and then proceeds at the steady rate.
 */
export interface RateLimiter {
  take(key: string, perMinute: number, cost?: number): Promise<RateLimitResult>;
  close(): Promise<void>;
}

const MINUTE_MS = 60_000;

function validate(perMinute: number, cost: number): RateLimitResult | null {
  if (!Number.isFinite(perMinute) || perMinute <= 0)
    throw new RangeError(`perMinute must be > 0, got ${perMinute}`);
  if (!Number.isFinite(cost) || cost < 0) throw new RangeError(`cost must be >= 0, got ${cost}`);
  // A cost above the bucket size can never be paid: refuse it rather than promise a retry time.
  if (cost > perMinute) return { ok: false, retryAfterMs: MINUTE_MS, remaining: 0 };
  return null;
}

// One atomic round trip. Time comes from the Redis server (TIME), so node clocks do not matter.
// State is a hash {t: tokens, ts: ms of last refill}; a missing key is a full bucket, so the key
// expires exactly when the bucket would be full again. Rejections write nothing.
// Since Redis 5 scripts replicate effects, so calling TIME before writing is allowed.
const TAKE_LUA = `
local capacity = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate = capacity / 60000
local state = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
if now > ts then
  tokens = math.min(capacity, tokens + (now - ts) * rate)
end
if tokens >= cost then
  tokens = tokens - cost
  redis.call('HSET', KEYS[1], 't', tostring(tokens), 'ts', tostring(math.max(now, ts)))
  redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate) + 1000)
  return {1, 0, math.floor(tokens)}
end
return {0, math.ceil((cost - tokens) / rate), math.floor(tokens)}
`;

type TakeCommand = (key: string, capacity: number, cost: number) => Promise<[number, number, number]>;

export interface RedisRateLimiterOptions {
  /** Key prefix, e.g. `gh:` (tests use a random one). Buckets live at `<prefix>rl:<key>`. */
  prefix?: string;
}

/**
 * Buckets shared by every node through Redis. Give it a connection of its own made with
 * `createRateLimitRedis` (no offline queue, short command timeout) so a dead Redis fails fast.
 */
export class RedisRateLimiter implements RateLimiter {
  private readonly prefix: string;
  private readonly command: TakeCommand;

  constructor(
    readonly redis: Redis,
    options: RedisRateLimiterOptions = {},
  ) {
    this.prefix = `${options.prefix ?? ""}rl:`;
    // defineCommand sends EVALSHA and falls back to EVAL once on NOSCRIPT (after a Redis restart).
    if (!(redis as unknown as Record<string, unknown>).gatehouseTakeToken) {
      redis.defineCommand("gatehouseTakeToken", { numberOfKeys: 1, lua: TAKE_LUA });
    }
    const bound = (redis as unknown as Record<string, TakeCommand>).gatehouseTakeToken;
    if (!bound) throw new Error("defineCommand did not install gatehouseTakeToken");
    this.command = bound.bind(redis);
  }

  async take(key: string, perMinute: number, cost = 1): Promise<RateLimitResult> {
    const refused = validate(perMinute, cost);
    if (refused) return refused;
    const [ok, retryAfterMs, remaining] = await this.command(this.prefix + key, perMinute, cost);
    return { ok: ok === 1, retryAfterMs: Number(retryAfterMs), remaining: Number(remaining) };
  }

  /** The Redis connection belongs to the caller; this does not close it. */
  async close(): Promise<void> {}
}

interface Bucket {
  tokens: number;
  ts: number;
  capacity: number;
}

export interface InProcessRateLimiterOptions {
  /** Milliseconds clock, injectable for tests. */
  now?: () => number;
  /** Sweep full buckets once the map holds this many (bounds memory under key churn). */
  sweepAt?: number;
}

/** Buckets in this process only: embedded mode, and the fallback while Redis is away. */
export class InProcessRateLimiter implements RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly now: () => number;
  private sweepAt: number;
  private readonly baseSweepAt: number;

  constructor(options: InProcessRateLimiterOptions = {}) {
    this.now = options.now ?? (() => performance.timeOrigin + performance.now());
    this.baseSweepAt = options.sweepAt ?? 10_000;
    this.sweepAt = this.baseSweepAt;
  }

  /** Synchronous form, for callers that hold no promise budget. */
  takeSync(key: string, perMinute: number, cost = 1): RateLimitResult {
    const refused = validate(perMinute, cost);
    if (refused) return refused;
    const now = this.now();
    const rate = perMinute / MINUTE_MS;
    let bucket = this.buckets.get(key);
    if (!bucket) {
      bucket = { tokens: perMinute, ts: now, capacity: perMinute };
      this.buckets.set(key, bucket);
      if (this.buckets.size >= this.sweepAt) this.sweep(now);
    } else {
      // A changed limit takes effect at once; tokens above the new size are cut.
      bucket.capacity = perMinute;
      if (now > bucket.ts) bucket.tokens = Math.min(perMinute, bucket.tokens + (now - bucket.ts) * rate);
      else bucket.tokens = Math.min(perMinute, bucket.tokens);
      bucket.ts = Math.max(now, bucket.ts);
    }
    if (bucket.tokens >= cost) {
      bucket.tokens -= cost;
      return { ok: true, retryAfterMs: 0, remaining: Math.floor(bucket.tokens) };
    }
    return {
      ok: false,
      retryAfterMs: Math.ceil((cost - bucket.tokens) / rate),
      remaining: Math.floor(bucket.tokens),
    };
  }

  async take(key: string, perMinute: number, cost = 1): Promise<RateLimitResult> {
    return this.takeSync(key, perMinute, cost);
  }

  /** Number of buckets held (for tests and metrics). */
  get size(): number {
    return this.buckets.size;
  }

  /** Forget every bucket (used when going back to Redis, so a later fallback starts fresh). */
  clear(): void {
    this.buckets.clear();
  }

  private sweep(now: number): void {
    // A bucket that has refilled to full is the same as no bucket.
    for (const [key, b] of this.buckets) {
      if (b.tokens + (now - b.ts) * (b.capacity / MINUTE_MS) >= b.capacity) this.buckets.delete(key);
    }
    // If most buckets are live, grow the threshold so sweeping stays amortised O(1) per take.
    this.sweepAt = Math.max(this.baseSweepAt, this.buckets.size * 2);
  }

  async close(): Promise<void> {
    this.buckets.clear();
  }
}

export interface ResilientRateLimiterOptions extends RedisRateLimiterOptions {
  /** Upper bound on one Redis round trip before the local bucket answers instead. Default 100 ms. */
  timeoutMs?: number;
  /** Called with true when the limiter starts answering from local buckets, false when Redis is back. */
  onFallbackChange?: (active: boolean, reason?: Error) => void;
  /** Counts each take answered locally because Redis failed or was not ready. */
  onFallbackTake?: () => void;
  local?: InProcessRateLimiter;
  /**
   * Leasing: for a bucket of `perMinute` ≥ 2 × `leaseDivisor`, one Redis round trip takes
   * `min(maxLease, perMinute / leaseDivisor)` tokens at once and this node hands them out locally
   * for up to `leaseMs`. Tokens leave the shared bucket before they are used, so N nodes together
   * never pass the limit; a node's unused lease is simply lost when it expires (a bounded, early
   * refusal, never a late one). Default divisor 1,000 (a lease is ≤ 0.1% of a minute's budget; buckets
   * under 2,000/min are never leased), max 100 tokens, 1 s.
   */
  leaseDivisor?: number;
  maxLease?: number;
  leaseMs?: number;
}

interface Lease {
  tokens: number;
  perMinute: number;
  expiresAt: number;
}

/**
 * Redis buckets while Redis answers; local buckets while it does not. It never waits on a dead
 * Redis: when the connection is not `ready` it goes local without sending anything, and a
 * command that is slow past `timeoutMs` is answered locally. While in fallback each node limits
 * on its own, so the effective limit is up to N × the configured one across N nodes.
 */
export class ResilientRateLimiter implements RateLimiter {
  private readonly remote: RedisRateLimiter;
  private readonly local: InProcessRateLimiter;
  private readonly timeoutMs: number;
  private fallback = false;
  private readonly onReady = () => this.setFallback(false);
  private readonly leases = new Map<string, Lease>();
  private readonly leasing = new Map<string, Promise<RateLimitResult>>();
  private readonly leaseDivisor: number;
  private readonly maxLease: number;
  private readonly leaseMs: number;

  constructor(
    private readonly redis: Redis,
    private readonly options: ResilientRateLimiterOptions = {},
  ) {
    this.remote = new RedisRateLimiter(redis, options);
    this.local = options.local ?? new InProcessRateLimiter();
    this.timeoutMs = options.timeoutMs ?? 100;
    this.leaseDivisor = options.leaseDivisor ?? 1000;
    this.maxLease = options.maxLease ?? 100;
    this.leaseMs = options.leaseMs ?? 1000;
    redis.on("ready", this.onReady);
  }

  /** Tokens of `key` this node may hand out without asking Redis (0 when unleased). */
  leased(key: string): number {
    const l = this.leases.get(key);
    return l && l.expiresAt > Date.now() ? l.tokens : 0;
  }

  /** True while takes are answered from local buckets. */
  get inFallback(): boolean {
    return this.fallback;
  }

  async take(key: string, perMinute: number, cost = 1): Promise<RateLimitResult> {
    if (this.redis.status !== "ready") {
      this.setFallback(true, new Error(`redis connection is ${this.redis.status}`));
      return this.takeLocal(key, perMinute, cost);
    }
    const size = Math.min(this.maxLease, Math.floor(perMinute / this.leaseDivisor));
    if (size < 2 || cost > size) return await this.takeRemote(key, perMinute, cost);
    // Within this node's lease: no round trip (a high-limit key costs one per `size` calls).
    for (;;) {
      const lease = this.leases.get(key);
      if (lease && lease.perMinute === perMinute && lease.expiresAt > Date.now() && lease.tokens >= cost) {
        lease.tokens -= cost;
        return { ok: true, retryAfterMs: 0, remaining: lease.tokens };
      }
      const pending = this.leasing.get(key);
      if (!pending) break;
      await pending; // another call of this node is fetching a lease: share it
    }
    const fetch = this.takeRemote(key, perMinute, size);
    this.leasing.set(key, fetch);
    let r: RateLimitResult;
    try {
      r = await fetch;
    } finally {
      this.leasing.delete(key);
    }
    if (!r.ok) {
      // Not a whole lease left: go token by token until the bucket refills.
      this.leases.delete(key);
      return await this.takeRemote(key, perMinute, cost);
    }
    if (this.leases.size > 10_000) this.sweepLeases();
    this.leases.set(key, { tokens: size - cost, perMinute, expiresAt: Date.now() + this.leaseMs });
    return { ok: true, retryAfterMs: 0, remaining: r.remaining };
  }

  private sweepLeases(): void {
    const now = Date.now();
    for (const [k, l] of this.leases) if (l.expiresAt <= now) this.leases.delete(k);
  }

  private async takeRemote(key: string, perMinute: number, cost: number): Promise<RateLimitResult> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const result = await Promise.race([
        this.remote.take(key, perMinute, cost),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`redis rate limit took over ${this.timeoutMs} ms`)),
            this.timeoutMs,
          );
        }),
      ]);
      this.setFallback(false);
      return result;
    } catch (err) {
      if (err instanceof RangeError) throw err;
      this.setFallback(true, err as Error);
      return this.takeLocal(key, perMinute, cost);
    } finally {
      clearTimeout(timer);
    }
  }

  private takeLocal(key: string, perMinute: number, cost: number): RateLimitResult {
    this.options.onFallbackTake?.();
    return this.local.takeSync(key, perMinute, cost);
  }

  private setFallback(active: boolean, reason?: Error): void {
    if (active === this.fallback) return;
    this.fallback = active;
    if (!active) this.local.clear();
    this.leases.clear();
    this.options.onFallbackChange?.(active, reason);
  }

  /** Stops listening to the connection; the connection itself belongs to the caller. */
  async close(): Promise<void> {
    this.redis.off("ready", this.onReady);
    await this.local.close();
  }
}

export interface RateLimitRedisOptions {
  /** Per-command timeout. Default 100 ms. */
  commandTimeoutMs?: number;
  /** TCP connect timeout. Default 1000 ms. */
  connectTimeoutMs?: number;
  /** Connection errors (the limiter itself falls back quietly); default: ignored. */
  onError?: (err: Error) => void;
}

/**
 * A Redis connection fit for rate limiting: no offline queue (commands fail at once while
 * disconnected instead of piling up), a short command timeout, reconnects forever in the
 * background with a capped backoff.
 */
export function createRateLimitRedis(url: string, options: RateLimitRedisOptions = {}): Redis {
  const redis = new Redis(url, {
    enableOfflineQueue: false,
    commandTimeout: options.commandTimeoutMs ?? 100,
    connectTimeout: options.connectTimeoutMs ?? 1000,
    maxRetriesPerRequest: 0,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 10), 2000),
    connectionName: "gatehouse-ratelimit",
    // Takes issued in the same tick share one write: under load a socket write per call cost
    // ~14% of a node's CPU in the benchmark profile (test/bench/RESULTS.md).
    enableAutoPipelining: true,
  });
  // Errors surface through take(); an unhandled 'error' event would crash the process.
  redis.on("error", options.onError ?? (() => {}));
  return redis;
}
