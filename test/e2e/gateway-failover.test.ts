// Sessions live in Redis, not in a node: start a session on node 0, SIGKILL node 0, and the same
// Mcp-Session-Id goes on at node 1 without a new initialize. Then an upstream dies.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALLOW_ALL } from "../support/admin-client.js";
import {
  connectAgent,
  errorData,
  expectThrows,
  firstText,
  rawMcp,
  roundRobinFetch,
} from "../support/agent.js";
import { printLogsOnFailure } from "../support/hooks.js";
import { type Fixture, startFixture, waitFor } from "../support/processes.js";
import { Stack } from "../support/stack.js";

printLogsOnFailure();

let stack: Stack;
let alpha: Fixture;
let beta: Fixture;
let key: string;
const T = "failover";

beforeAll(async () => {
  [alpha, beta] = await Promise.all([
    startFixture("tools-server.mjs", ["--name", "alpha"]),
    startFixture("tools-server.mjs", ["--name", "beta"]),
  ]);
  stack = await Stack.start({ gateways: 2 });
  await stack.admin.createTenant(T);
  await stack.admin.createUpstream(T, { name: "alpha", url: alpha.url });
  await stack.admin.createUpstream(T, { name: "beta", url: beta.url });
  await stack.admin.putPolicy(T, ALLOW_ALL);
  key = (await stack.admin.createKey(T, { name: "agent" })).key;
}, 180_000);

afterAll(async () => {
  await stack?.stop();
});

describe("a session served by both nodes in turn (round-robin load balancer)", () => {
  it("relays calls, progress, sampling, elicitation and cancellation across nodes", async () => {
    const hops: string[] = [];
    const agent = await connectAgent(stack.mcpUrl(T, undefined, 0), {
      token: key,
      fetch: roundRobinFetch(
        stack.gateways.map((g) => g.url),
        hops,
      ),
      onSampling: () => ({ role: "assistant", content: { type: "text", text: "rr-sampled" }, model: "m" }),
      onElicit: () => ({ action: "accept", content: { answer: "rr-answer" } }),
    });
    try {
      for (let i = 0; i < 4; i++) {
        expect(
          firstText(await agent.client.callTool({ name: "alpha_echo", arguments: { text: `rr${i}` } })),
        ).toBe(`alpha:echo:rr${i}`);
      }
      const progress: number[] = [];
      await agent.client.callTool({ name: "alpha_slow", arguments: { ms: 300, steps: 3 } }, undefined, {
        onprogress: (p) => progress.push(p.progress),
      });
      expect(progress).toEqual([1, 2, 3]);
      // The server-to-client request comes on the POST stream of one node; the agent's answer is
      // POSTed to the other one.
      for (let i = 0; i < 2; i++) {
        expect(
          firstText(await agent.client.callTool({ name: "alpha_ask_llm", arguments: { prompt: "q" } })),
        ).toBe("llm said: rr-sampled");
        expect(
          firstText(await agent.client.callTool({ name: "alpha_ask_user", arguments: { message: "q" } })),
        ).toBe(`user accept: ${JSON.stringify({ answer: "rr-answer" })}`);
      }
      // notifications/cancelled lands on the node that is not running the call.
      const stats = async () =>
        JSON.parse(firstText(await agent.client.callTool({ name: "alpha_stats", arguments: {} }))) as {
          cancelled: number;
        };
      const before = (await stats()).cancelled;
      const ac = new AbortController();
      const call = agent.client.callTool(
        { name: "alpha_slow", arguments: { ms: 5000, steps: 50 } },
        undefined,
        {
          signal: ac.signal,
        },
      );
      setTimeout(() => ac.abort("rr cancel"), 300);
      await expect(call).rejects.toThrow();
      await waitFor("the upstream to see the cancellation", async () => (await stats()).cancelled > before, {
        timeoutMs: 5000,
      });
      const hosts = new Set(hops.filter((h) => h.startsWith("POST")).map((h) => h.split(" ")[1]));
      expect(hosts.size).toBe(2);
    } finally {
      await agent.close();
    }
  });
});

describe("session failover", () => {
  it("continues a session on node 1 after node 0 was killed, without re-initializing", async () => {
    const first = await connectAgent(stack.mcpUrl(T, undefined, 0), { token: key });
    const sessionId = first.sessionId;
    expect(sessionId).toBeTruthy();
    expect(
      firstText(await first.client.callTool({ name: "alpha_echo", arguments: { text: "before" } })),
    ).toBe("alpha:echo:before");

    await stack.gateways[0]!.proc.kill("SIGKILL");
    await first.close().catch(() => {});

    // The same session id, presented to node 1 by a client that does not initialize again.
    const second = await connectAgent(stack.mcpUrl(T, undefined, 1), { token: key, sessionId });
    try {
      expect(second.sessionId).toBe(sessionId);
      const names = (await second.client.listTools()).tools.map((t) => t.name);
      expect(names).toContain("alpha_echo");
      expect(
        firstText(await second.client.callTool({ name: "alpha_echo", arguments: { text: "after" } })),
      ).toBe("alpha:echo:after");
      const progress: number[] = [];
      await second.client.callTool({ name: "alpha_slow", arguments: { ms: 200, steps: 2 } }, undefined, {
        onprogress: (p) => progress.push(p.progress),
      });
      expect(progress).toEqual([1, 2]);
    } finally {
      await second.close();
    }
  });

  it("still refuses an unknown session id with 404 on the surviving node", async () => {
    const res = await rawMcp(
      stack.mcpUrl(T, undefined, 1),
      { jsonrpc: "2.0", id: 1, method: "tools/list" },
      { token: key, sessionId: "not-a-real-session-id-0123456789", protocolVersion: "2025-11-25" },
    );
    expect(res.status).toBe(404);
  });

  it("serves sessions of the survivor on a restarted node 0", async () => {
    const agent = await connectAgent(stack.mcpUrl(T, undefined, 1), { token: key });
    const sessionId = agent.sessionId;
    await agent.close().catch(() => {});
    await stack.startGateway(0);
    const again = await connectAgent(stack.mcpUrl(T, undefined, 0), { token: key, sessionId });
    try {
      expect(
        firstText(await again.client.callTool({ name: "alpha_echo", arguments: { text: "back" } })),
      ).toBe("alpha:echo:back");
    } finally {
      await again.close();
    }
  });
});

describe("one upstream down", () => {
  it("lists the others, fails calls to it fast with UPSTREAM_UNAVAILABLE, and nothing hangs", async () => {
    const agent = await connectAgent(stack.mcpUrl(T, undefined, 1), { token: key });
    try {
      expect(firstText(await agent.client.callTool({ name: "beta_echo", arguments: { text: "up" } }))).toBe(
        "beta:echo:up",
      );
      await beta.proc.kill("SIGKILL");
      let started = Date.now();
      const names = (await agent.client.listTools()).tools.map((t) => t.name);
      expect(names).toContain("alpha_echo");
      expect(Date.now() - started).toBeLessThan(10_000);
      started = Date.now();
      const err = await expectThrows(() =>
        agent.client.callTool({ name: "beta_echo", arguments: { text: "down" } }),
      );
      expect(errorData(err)?.code).toBe("UPSTREAM_UNAVAILABLE");
      expect(Date.now() - started).toBeLessThan(10_000);
      // The healthy upstream is unaffected.
      expect(
        firstText(await agent.client.callTool({ name: "alpha_echo", arguments: { text: "still" } })),
      ).toBe("alpha:echo:still");
    } finally {
      await agent.close();
    }
  });
});
