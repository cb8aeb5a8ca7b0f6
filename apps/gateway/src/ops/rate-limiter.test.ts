import { randomBytes } from "node:crypto";
import net from "node:net";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  createRateLimitRedis,
  InProcessRateLimiter,
  RedisRateLimiter,
  ResilientRateLimiter,
} from "./rate-limiter.js";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

async function deadPort(): Promise<number> {
  // Bind and release a port: nothing listens there afterwards.
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("InProcessRateLimiter", () => {
  it("allows a burst of perMinute, then refuses with the time until one token is back", () => {
    let now = 1_000_000;
    const limiter = new InProcessRateLimiter({ now: () => now });
    for (let i = 0; i < 60; i++) expect(limiter.takeSync("k", 60).ok).toBe(true);
    const refused = limiter.takeSync("k", 60);
    expect(refused).toEqual({ ok: false, retryAfterMs: 1000, remaining: 0 });
    now += 400;
    expect(limiter.takeSync("k", 60).retryAfterMs).toBe(600);
    now += 600;
    expect(limiter.takeSync("k", 60)).toEqual({ ok: true, retryAfterMs: 0, remaining: 0 });
  });

  it("keeps keys apart and charges the cost", () => {
    const now = 0;
    const limiter = new InProcessRateLimiter({ now: () => now });
    expect(limiter.takeSync("a", 10, 7)).toMatchObject({ ok: true, remaining: 3 });
    expect(limiter.takeSync("a", 10, 4)).toMatchObject({ ok: false, retryAfterMs: 6000, remaining: 3 });
    expect(limiter.takeSync("b", 10, 4)).toMatchObject({ ok: true, remaining: 6 });
  });

  it("refuses a cost larger than the bucket outright", () => {
    const limiter = new InProcessRateLimiter();
    expect(limiter.takeSync("k", 5, 6)).toEqual({ ok: false, retryAfterMs: 60_000, remaining: 0 });
    expect(() => limiter.takeSync("k", 0)).toThrow(RangeError);
  });

  it("sweeps refilled buckets so key churn does not grow memory without bound", () => {
    let now = 0;
    const limiter = new InProcessRateLimiter({ now: () => now, sweepAt: 100 });
    for (let i = 0; i < 99; i++) limiter.takeSync(`k${i}`, 60);
    now += 60_000; // all refilled
    limiter.takeSync("fresh", 60);
    expect(limiter.size).toBeLessThanOrEqual(1);
  });
});

describe("RedisRateLimiter (real Redis)", () => {
  const prefix = `test:${randomBytes(6).toString("hex")}:`;
  let a: Redis;
  let b: Redis;

  beforeAll(() => {
    a = new Redis(REDIS_URL);
    b = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    const keys = await a.keys(`${prefix}*`);
    if (keys.length) await a.del(...keys);
    a.disconnect();
    b.disconnect();
  });

  it("enforces the limit and says when to retry", async () => {
    const limiter = new RedisRateLimiter(a, { prefix });
    const results = [];
    for (let i = 0; i < 6; i++) results.push(await limiter.take("key:1", 5));
    expect(results.slice(0, 5).every((r) => r.ok)).toBe(true);
    expect(results.map((r) => r.remaining)).toEqual([4, 3, 2, 1, 0, 0]);
    const refused = results[5]!;
    expect(refused.ok).toBe(false);
    // 5 per minute = one token per 12 s; a few ms have passed since the first take.
    expect(refused.retryAfterMs).toBeGreaterThan(11_000);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(12_000);
  });

  it("retryAfterMs is honest: waiting that long lets the next call through", async () => {
    const limiter = new RedisRateLimiter(a, { prefix });
    // 600/min = one token per 100 ms. Empty the bucket in one take so no time passes between takes.
    expect((await limiter.take("key:fast", 600, 600)).ok).toBe(true);
    const refused = await limiter.take("key:fast", 600);
    expect(refused.ok).toBe(false);
    expect(refused.retryAfterMs).toBeGreaterThan(0);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(100);
    await new Promise((r) => setTimeout(r, refused.retryAfterMs + 5));
    expect((await limiter.take("key:fast", 600)).ok).toBe(true);
  });

  it("is shared by two limiter instances on two connections (two nodes)", async () => {
    const node1 = new RedisRateLimiter(a, { prefix });
    const node2 = new RedisRateLimiter(b, { prefix });
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? node1 : node2).take("tenant:shared", 10)),
    );
    expect(outcomes.filter((r) => r.ok)).toHaveLength(10);
    expect((await node2.take("tenant:shared", 10)).ok).toBe(false);
  });

  it("stores buckets under the prefix with a TTL of the refill time", async () => {
    const limiter = new RedisRateLimiter(a, { prefix });
    await limiter.take("ttl", 60, 30);
    const ttl = await a.pttl(`${prefix}rl:ttl`);
    // 30 tokens at 1/s refill in 30 s (+1 s margin).
    expect(ttl).toBeGreaterThan(29_000);
    expect(ttl).toBeLessThanOrEqual(31_000);
  });

  it("survives SCRIPT FLUSH (EVALSHA falls back to EVAL)", async () => {
    const limiter = new RedisRateLimiter(a, { prefix });
    await limiter.take("flush", 100);
    await a.script("FLUSH");
    expect((await limiter.take("flush", 100)).remaining).toBe(98);
  });
});

describe("ResilientRateLimiter", () => {
  const prefix = `test:${randomBytes(6).toString("hex")}:`;
  const opened: Redis[] = [];
  afterEach(() => {
    for (const r of opened.splice(0)) r.disconnect();
  });

  it("answers from Redis while it is up", async () => {
    const redis = createRateLimitRedis(REDIS_URL);
    opened.push(redis);
    await new Promise((r) => redis.once("ready", r));
    const changes: boolean[] = [];
    const limiter = new ResilientRateLimiter(redis, { prefix, onFallbackChange: (a) => changes.push(a) });
    const other = new RedisRateLimiter(redis, { prefix });
    expect((await limiter.take("k", 3)).remaining).toBe(2);
    expect((await other.take("k", 3)).remaining).toBe(1);
    expect(limiter.inFallback).toBe(false);
    expect(changes).toEqual([]);
    await limiter.close();
  });

  it("leases tokens of high limits: one round trip per lease, and two nodes together never pass the limit", async () => {
    const [r1, r2] = [createRateLimitRedis(REDIS_URL), createRateLimitRedis(REDIS_URL)];
    opened.push(r1, r2);
    await Promise.all([r1, r2].map((r) => new Promise((ok) => r.once("ready", ok))));
    const options = { prefix, leaseDivisor: 10, maxLease: 20 };
    const a = new ResilientRateLimiter(r1, options);
    const b = new ResilientRateLimiter(r2, options);
    expect((await a.take("lease", 200)).ok).toBe(true);
    expect(a.leased("lease")).toBe(19); // 200/10 = 20 taken from the shared bucket at once
    const started = Date.now();
    let allowed = 1;
    for (let i = 0; i < 300; i++) if ((await (i % 2 ? a : b).take("lease", 200)).ok) allowed++;
    const refilled = Math.ceil(((Date.now() - started + 50) / 60_000) * 200);
    expect(allowed).toBeGreaterThanOrEqual(200 - 2 * 20);
    expect(allowed).toBeLessThanOrEqual(200 + refilled);
    const refused = await b.take("lease", 200);
    expect(refused.ok).toBe(false);
    expect(refused.retryAfterMs).toBeGreaterThan(0);
    // Small limits are never leased: every take is exact.
    await a.take("small", 3);
    expect(a.leased("small")).toBe(0);
    await a.close();
    await b.close();
  });

  it("falls back at once to a local bucket when Redis is on a dead port", async () => {
    const redis = createRateLimitRedis(`redis://127.0.0.1:${await deadPort()}`, {
      commandTimeoutMs: 600_000,
      connectTimeoutMs: 600_000,
    });
    opened.push(redis);
    const changes: boolean[] = [];
    let localTakes = 0;
    // "At once", not "after a timeout": the limiter's own command timeout is far past the test's,
    // so only the dead connection itself can have sent these takes to the local bucket.
    const limiter = new ResilientRateLimiter(redis, {
      prefix,
      timeoutMs: 600_000,
      onFallbackChange: (a) => changes.push(a),
      onFallbackTake: () => localTakes++,
    });
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await limiter.take("k", 3));
    expect(results.map((r) => r.ok)).toEqual([true, true, true, false]);
    expect(limiter.inFallback).toBe(true);
    expect(changes).toEqual([true]);
    expect(localTakes).toBe(4);
    await limiter.close();
  });

  it("falls back after a disconnect and goes back to Redis when it reconnects", async () => {
    const redis = createRateLimitRedis(REDIS_URL);
    opened.push(redis);
    await new Promise((r) => redis.once("ready", r));
    const changes: boolean[] = [];
    const limiter = new ResilientRateLimiter(redis, { prefix, onFallbackChange: (a) => changes.push(a) });
    expect((await limiter.take("d", 100)).ok).toBe(true);

    // Kill our connection from the server side; ioredis reconnects in the background.
    const id = await redis.client("ID");
    const admin = new Redis(REDIS_URL);
    opened.push(admin);
    const closed = new Promise((r) => redis.once("close", r));
    await admin.client("KILL", "ID", String(id));
    await closed;

    const during = await limiter.take("d", 100);
    expect(during.ok).toBe(true);
    expect(limiter.inFallback).toBe(true);

    await new Promise((r) => redis.once("ready", r));
    const after = await limiter.take("d", 100);
    expect(limiter.inFallback).toBe(false);
    // Back on the shared bucket: one take before the outage, one now.
    expect(after.remaining).toBe(98);
    expect(changes).toEqual([true, false]);
    await limiter.close();
  });

  it("answers locally when a Redis command hangs past the timeout", async () => {
    // A fake Redis that answers the handshake, then goes silent: a hung server, not a dead one.
    const fake = await startSilentRedis();
    // ioredis would give up only after 10 minutes: an answer within the test's time is the limiter's own.
    const redis = createRateLimitRedis(`redis://127.0.0.1:${fake.port}`, { commandTimeoutMs: 600_000 });
    opened.push(redis);
    await new Promise((r) => redis.once("ready", r));
    fake.silence();
    const changes: boolean[] = [];
    const limiter = new ResilientRateLimiter(redis, {
      prefix,
      timeoutMs: 30,
      onFallbackChange: (a) => changes.push(a),
    });
    const result = await limiter.take("slow", 10);
    expect(result).toMatchObject({ ok: true, remaining: 9 });
    expect(changes).toEqual([true]);
    await limiter.close();
    redis.disconnect();
    await fake.close();
  });
});

/** Speaks just enough RESP for ioredis to become ready, then can be told to stop answering. */
async function startSilentRedis(): Promise<{ port: number; silence(): void; close(): Promise<void> }> {
  let silent = false;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    let buffer = "";
    socket.on("data", (chunk) => {
      buffer += chunk.toString("latin1");
      // Commands arrive as RESP arrays of bulk strings: *N\r\n($len\r\narg\r\n)*N
      for (;;) {
        const parsed = parseCommand(buffer);
        if (!parsed) break;
        buffer = buffer.slice(parsed.length);
        if (silent) continue;
        const name = parsed.args[0]?.toUpperCase();
        if (name === "INFO") {
          const info = "# Server\r\nredis_version:7.0.0\r\nloading:0\r\n";
          socket.write(`$${info.length}\r\n${info}\r\n`);
        } else socket.write("+OK\r\n");
      }
    });
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    silence: () => {
      silent = true;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function parseCommand(buffer: string): { args: string[]; length: number } | null {
  if (!buffer.startsWith("*")) return null;
  let pos = buffer.indexOf("\r\n");
  if (pos < 0) return null;
  const count = Number(buffer.slice(1, pos));
  pos += 2;
  const args: string[] = [];
  for (let i = 0; i < count; i++) {
    const end = buffer.indexOf("\r\n", pos);
    if (end < 0) return null;
    const len = Number(buffer.slice(pos + 1, end));
    if (buffer.length < end + 2 + len + 2) return null;
    args.push(buffer.slice(end + 2, end + 2 + len));
    pos = end + 2 + len + 2;
  }
  return { args, length: pos };
}
