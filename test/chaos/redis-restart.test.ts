// Redis stopped, then back empty (issue 15, seen from outside): a session the node serves must go on
// working during the outage and after it, the node must say it is degraded meanwhile, and rate limits
// and config propagation must work again once Redis is back. A Redis of our own, never the shared one.
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALLOW_ALL } from "../support/admin-client.js";
import {
  type Agent,
  connectAgent,
  expectThrows,
  firstText,
  rawInitialize,
  rawMcp,
} from "../support/agent.js";
import { printLogsOnFailure } from "../support/hooks.js";
import { type Fixture, sleep, startFixture, waitFor } from "../support/processes.js";
import { RedisServer } from "../support/redis-server.js";
import { Stack } from "../support/stack.js";

printLogsOnFailure();

let redis: RedisServer;
let stack: Stack;
let alpha: Fixture;
let key: string;
let revocable: { id: string; key: string };
const T = "redis-restart";

beforeAll(async () => {
  [redis, alpha] = await Promise.all([
    RedisServer.start(),
    startFixture("tools-server.mjs", ["--name", "alpha"]),
  ]);
  stack = await Stack.start({ gateways: 1, redisUrl: redis.url });
  // A tenant limit below the leasing threshold: every call takes from the shared bucket in Redis.
  await stack.admin.createTenant(T, { rateLimit: { perMinute: 1000 } });
  await stack.admin.createUpstream(T, { name: "alpha", url: alpha.url });
  await stack.admin.putPolicy(T, ALLOW_ALL);
  key = (await stack.admin.createKey(T, { name: "agent" })).key;
  revocable = await stack.admin.createKey(T, { name: "to-revoke" });
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  await redis?.close();
});

const echo = async (agent: Agent, text: string) =>
  firstText(await agent.client.callTool({ name: "alpha_echo", arguments: { text } }));

async function metric(name: string): Promise<number | undefined> {
  const text = await (await fetch(`${stack.gateways[0]!.metricsUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
}

async function readyz(): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${stack.gateways[0]!.url}/readyz`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe("Redis stopped, then restarted empty", () => {
  it("keeps the session a node serves, during the outage and after it", async () => {
    const agent = await connectAgent(stack.mcpUrl(T), { token: key });
    const sessionKey = `${stack.redisPrefix}session:${agent.sessionId}`;
    try {
      expect(await echo(agent, "before")).toBe("alpha:echo:before");

      await redis.stop();
      // Held sessions go on while Redis is away (across the 2 s store re-check), and the node says
      // it is degraded rather than down.
      for (let i = 0; i < 6; i++) {
        expect(await echo(agent, `down${i}`)).toBe(`alpha:echo:down${i}`);
        await sleep(500);
      }
      const r = await readyz();
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ status: "degraded", sessions: false });
      expect(await metric("gatehouse_gateway_session_store_up")).toBe(0);
      // What it cannot do, it says: a new session needs the shared store.
      const refused = await expectThrows(() =>
        rawInitialize(stack.mcpUrl(T), { token: key }).then(() => undefined),
      );
      expect(String(refused)).toMatch(/HTTP 503/);
      expect(String(refused)).toMatch(/session store/i);

      await redis.restart();
      // The node re-asserts the sessions it holds: the shared record comes back by itself.
      const probe = new Redis(redis.url, { maxRetriesPerRequest: 1 });
      try {
        await waitFor(
          "the session to be re-asserted in Redis",
          async () => (await probe.exists(sessionKey)) === 1,
          {
            timeoutMs: 15_000,
          },
        );
      } finally {
        probe.disconnect();
      }
      // Calls go on past the node's store re-check (every 2 s): the bug dropped the session here.
      for (let i = 0; i < 8; i++) {
        expect(await echo(agent, `after${i}`)).toBe(`alpha:echo:after${i}`);
        await sleep(500);
      }
      await waitFor("readiness to be full again", async () => (await readyz()).body.status === "ready", {
        timeoutMs: 10_000,
      });
      expect(await metric("gatehouse_gateway_session_store_up")).toBe(1);
      expect(await metric("gatehouse_gateway_sessions_reasserted_total")).toBeGreaterThanOrEqual(1);
      // And a new session works again.
      const fresh = await connectAgent(stack.mcpUrl(T), { token: key });
      expect(await echo(fresh, "fresh")).toBe("alpha:echo:fresh");
      await fresh.close();
    } finally {
      await agent.close();
    }
  });

  it("heals config missed during the outage, and rate limits are shared again afterwards", async () => {
    if (!redis.running) await redis.restart();
    const agent = await connectAgent(stack.mcpUrl(T), { token: revocable.key });
    expect(await echo(agent, "x")).toBe("alpha:echo:x");
    await redis.stop();
    // Committed in Postgres; the bus event is lost with Redis.
    await stack.admin.revokeKey(T, revocable.id);
    await sleep(1000);
    await redis.restart();
    // The bus reconnects, the node re-checks versions: the revoked key is refused.
    let last = 0;
    await waitFor(
      "the revocation to reach the node",
      async () => {
        const res = await rawMcp(
          stack.mcpUrl(T),
          { jsonrpc: "2.0", id: 7, method: "tools/list" },
          { token: revocable.key, sessionId: agent.sessionId, protocolVersion: "2025-11-25" },
        );
        last = res.status;
        return res.status === 401;
      },
      { timeoutMs: 15_000, intervalMs: 300 },
    ).catch((err: Error) => {
      throw new Error(`${err.message} (last status ${last})`);
    });
    await agent.close();

    await waitFor(
      "rate limits back on the shared buckets",
      async () => (await metric("gatehouse_gateway_rate_limit_local_fallback")) === 0,
      { timeoutMs: 15_000 },
    );
    await waitFor("readiness to be full again", async () => (await readyz()).body.status === "ready", {
      timeoutMs: 10_000,
    });
    const after = await connectAgent(stack.mcpUrl(T), { token: key });
    expect(await echo(after, "z")).toBe("alpha:echo:z");
    await after.close();
    const probe = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    try {
      const [, buckets] = await probe.scan("0", "MATCH", `${stack.redisPrefix}rl:*`, "COUNT", 1000);
      expect(buckets.length).toBeGreaterThan(0);
    } finally {
      probe.disconnect();
    }
  });
});
