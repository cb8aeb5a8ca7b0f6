// RedisSessionStore against the machine's Redis, under a key prefix of its own. "Redis lost its
// data" is every key under that prefix deleted (what a restart without persistence or a flush does
// to this deployment), never a flush of the shared server.
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { MemorySessionStore, RedisSessionStore, type SessionRecord } from "./session-store.js";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const prefix = `gatehouse:test:sessions:${randomBytes(4).toString("hex")}:`;
const admin = new Redis(REDIS_URL);
const stores: RedisSessionStore[] = [];

const waitUntil = async (what: string, fn: () => Promise<boolean>) => {
  const deadline = Date.now() + 10_000;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

/** A node's store, once connected and its marker is set. */
async function store(nodeId: string): Promise<RedisSessionStore> {
  const s = new RedisSessionStore({ url: REDIS_URL, keyPrefix: prefix, ttlSeconds: 60, nodeId });
  stores.push(s);
  await waitUntil(
    `node ${nodeId}'s marker`,
    async () => (await admin.exists(`${prefix}session-holder:${nodeId}`)) === 1,
  );
  return s;
}

function record(id = randomBytes(8).toString("hex")): SessionRecord {
  return {
    id,
    tenantId: "t1",
    principalId: "key:1",
    upstream: null,
    protocolVersion: "2025-11-25",
    clientCapabilities: {},
    clientInfo: null,
    logLevel: null,
    upstreams: {},
    createdAt: Date.now(),
  };
}

/** What Redis restarted empty looks like to this deployment. */
async function loseEverything(): Promise<void> {
  const keys = await admin.keys(`${prefix}*`);
  if (keys.length > 0) await admin.del(...keys);
}

afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  await loseEverything();
});

afterAll(() => {
  admin.disconnect();
});

describe("RedisSessionStore after Redis lost its data", () => {
  it("re-asserts the sessions a node holds instead of reporting them gone", async () => {
    const a = await store("a");
    const r = record();
    await a.put(r);
    expect(await a.touch(r.id)).toBe(true);
    await loseEverything();
    // The touch that finds the key missing sees the node's marker gone too: data lost, not ended.
    expect(await a.touch(r.id)).toBe(true);
    expect(JSON.parse((await admin.get(`${prefix}session:${r.id}`)) ?? "null")).toMatchObject({ id: r.id });
    // Counted against its principal's cap again.
    expect(await admin.sismember(`${prefix}psessions:t1:key:1`, r.id)).toBe(1);
  });

  it("still reports a session ended on another node as gone, and never brings it back", async () => {
    const a = await store("a");
    const b = await store("b");
    await a.subscribeNode("a", () => {});
    const r = record();
    await a.put(r);
    expect(await b.get(r.id)).toMatchObject({ id: r.id });
    await b.delete(r.id);
    expect(await a.touch(r.id)).toBe(false);

    const s = record();
    await a.put(s);
    expect(await b.get(s.id)).toMatchObject({ id: s.id });
    await b.delete(s.id);
    // a heard of the DELETE (bus of the store) before Redis lost everything: it does not re-assert it.
    await waitUntil("a to forget the ended session", async () => a.heldCount === 0);
    await loseEverything();
    const t = record();
    await a.put(t);
    await loseEverything();
    expect(await a.touch(t.id)).toBe(true);
    expect(await admin.exists(`${prefix}session:${s.id}`)).toBe(0);
  });

  it("reports an unknown session as gone without re-asserting anything", async () => {
    const a = await store("a");
    expect(await a.touch("nope")).toBe(false);
    expect(await a.get("nope")).toBeNull();
  });
});

describe("MemorySessionStore (embedded mode)", () => {
  it("forgets expired sessions that nobody asks for again (their records and principal slots)", async () => {
    const store = new MemorySessionStore(1, 50);
    try {
      for (let i = 0; i < 20; i++) {
        const r: SessionRecord = {
          id: `mem-${i}`,
          tenantId: "t",
          principalId: "p",
          upstream: null,
          protocolVersion: "2025-11-25",
          clientCapabilities: {},
          clientInfo: null,
          logLevel: null,
          upstreams: {},
          createdAt: Date.now(),
        };
        await store.put(r);
        expect(await store.claimSlot(r, 100)).toBe(true);
      }
      expect(store.size).toBe(20);
      const deadline = Date.now() + 10_000;
      while (store.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(store.size).toBe(0);
    } finally {
      await store.close();
    }
  });
});
