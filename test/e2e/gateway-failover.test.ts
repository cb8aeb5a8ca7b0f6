// Sessions live in Redis, not in a node: start a session on node 0, SIGKILL node 0, and the same
// Mcp-Session-Id goes on at node 1 without a new initialize. Then an upstream dies.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALLOW_ALL } from "../support/admin-client.js";
import { connectAgent, errorData, expectThrows, firstText, rawMcp } from "../support/agent.js";
import { printLogsOnFailure } from "../support/hooks.js";
import { type Fixture, startFixture } from "../support/processes.js";
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
