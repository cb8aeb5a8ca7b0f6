// The gateway as an agent sees it, across real processes: API + two gateway nodes + Postgres +
// Redis, upstreams `everything` (@modelcontextprotocol/server-everything), `alpha` (tools-server
// fixture, explicit prefix, static headers), `modern` (a 2026-07-28-only upstream) and `old`
// (tools-server over the legacy HTTP+SSE transport).
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureInspector } from "../conformance/run.mjs";
import { ALLOW_ALL } from "../support/admin-client.js";
import {
  type Agent,
  connectAgent,
  connectModernAgent,
  errorData,
  expectThrows,
  firstText,
  rawInitialize,
  rawMcp,
} from "../support/agent.js";
import { printLogsOnFailure } from "../support/hooks.js";
import { type Fixture, startFixture, waitFor } from "../support/processes.js";
import { Stack } from "../support/stack.js";

printLogsOnFailure();

const STATIC_HEADER = "static-header-value-7f3a";
let stack: Stack;
let everything: Fixture;
let alpha: Fixture;
let modern: Fixture;
let legacySse: Fixture;
let bulk: Fixture;
let key: string;
const T = "acme";
const PAGED = "paged";
let pagedKey: string;

beforeAll(async () => {
  [everything, alpha, modern, legacySse, bulk] = await Promise.all([
    startFixture("everything.mjs"),
    startFixture("tools-server.mjs", ["--name", "alpha"]),
    startFixture("modern-server.mjs", ["--name", "modern"]),
    startFixture("tools-server.mjs", ["--name", "old", "--sse"]),
    startFixture("tools-server.mjs", ["--name", "bulk", "--many", "130", "--page-size", "25"]),
  ]);
  stack = await Stack.start({ gateways: 2 });
  await stack.admin.createTenant(T);
  await stack.admin.createUpstream(T, { name: "everything", url: everything.url });
  await stack.admin.createUpstream(T, {
    name: "alpha",
    url: alpha.url,
    toolPrefix: "a_",
    headers: { "X-Static-Token": STATIC_HEADER },
  });
  await stack.admin.createUpstream(T, { name: "modern", url: modern.url, toolPrefix: "m_" });
  await stack.admin.createUpstream(T, {
    name: "old",
    transport: "sse",
    url: `http://127.0.0.1:${legacySse.port}/sse`,
    toolPrefix: "o_",
  });
  await stack.admin.putPolicy(T, ALLOW_ALL);
  key = (await stack.admin.createKey(T, { name: "agent", agent: "e2e" })).key;
  // A second tenant whose one upstream has more tools than fit a page, served in pages of 25.
  await stack.admin.createTenant(PAGED);
  await stack.admin.createUpstream(PAGED, { name: "bulk", url: bulk.url, toolPrefix: "b_" });
  await stack.admin.putPolicy(PAGED, ALLOW_ALL);
  pagedKey = (await stack.admin.createKey(PAGED, { name: "pager" })).key;
}, 180_000);

afterAll(async () => {
  await stack?.stop();
});

describe("aggregation at /t/{tenant}/mcp", () => {
  let agent: Agent;
  beforeAll(async () => {
    agent = await connectAgent(stack.mcpUrl(T), { token: key });
  });
  afterAll(async () => {
    await agent?.close();
  });

  it("lists every upstream's tools under its prefix (default `name_`, or the configured one)", async () => {
    const names = (await agent.client.listTools()).tools.map((t) => t.name);
    expect(names).toEqual(
      expect.arrayContaining(["everything_echo", "everything_get-sum", "a_echo", "a_whoami", "m_echo"]),
    );
    // Nothing unprefixed leaks through.
    expect(names).not.toContain("echo");
    const prefixes = ["everything_", "a_", "m_", "o_"];
    expect(names.filter((n) => !prefixes.some((p) => n.startsWith(p)))).toEqual([]);
  });

  it("routes calls by prefix to the right upstream", async () => {
    expect(firstText(await agent.client.callTool({ name: "a_echo", arguments: { text: "hi" } }))).toBe(
      "alpha:echo:hi",
    );
    expect(
      firstText(await agent.client.callTool({ name: "everything_echo", arguments: { message: "yo" } })),
    ).toContain("yo");
    const sum = await agent.client.callTool({ name: "everything_get-sum", arguments: { a: 2, b: 3 } });
    expect(firstText(sum)).toContain("5");
  });

  it("serves a 2026-07-28-only upstream to a 2025-11-25 client", async () => {
    expect(firstText(await agent.client.callTool({ name: "m_echo", arguments: { text: "old" } }))).toBe(
      "modern:echo:old",
    );
  });

  it("serves an upstream speaking the legacy HTTP+SSE transport", async () => {
    expect(firstText(await agent.client.callTool({ name: "o_echo", arguments: { text: "sse" } }))).toBe(
      "old:echo:sse",
    );
  });

  it("answers an unknown tool with TOOL_NOT_FOUND", async () => {
    const err = await expectThrows(() => agent.client.callTool({ name: "a_nope", arguments: {} }));
    expect(errorData(err)?.code).toBe("TOOL_NOT_FOUND");
  });

  it("merges prompts (prefixed) and resources (readable through the gateway)", async () => {
    const prompts = (await agent.client.listPrompts()).prompts.map((p) => p.name);
    expect(prompts).toContain("a_greet");
    const greeting = await agent.client.getPrompt({ name: "a_greet", arguments: { name: "Ada" } });
    expect(JSON.stringify(greeting.messages)).toContain("Hello Ada from alpha");

    const resources = (await agent.client.listResources()).resources;
    const info = resources.find((r) => r.uri.includes("alpha") || r.name === "info");
    expect(info, JSON.stringify(resources.map((r) => r.uri))).toBeDefined();
    const uris = resources.map((r) => r.uri);
    expect(new Set(uris).size).toBe(uris.length);
    const read = await agent.client.readResource({ uri: info!.uri });
    expect(JSON.stringify(read.contents)).toContain("This is alpha");
  });

  it("negotiated 2025-11-25 and issued an unguessable session id", () => {
    expect(agent.transport.protocolVersion).toBe("2025-11-25");
    expect(agent.sessionId).toMatch(/^[\x21-\x7e]{22,}$/);
  });
});

describe("one upstream alone at /t/{tenant}/mcp/{upstream}", () => {
  it("lists only that upstream's tools, unprefixed, and calls them", async () => {
    const agent = await connectAgent(stack.mcpUrl(T, "alpha"), { token: key });
    try {
      const names = (await agent.client.listTools()).tools.map((t) => t.name);
      expect(names).toEqual(expect.arrayContaining(["echo", "get_secret", "whoami", "slow"]));
      expect(names.some((n) => n.startsWith("a_") || n.startsWith("everything"))).toBe(false);
      expect(firstText(await agent.client.callTool({ name: "echo", arguments: { text: "solo" } }))).toBe(
        "alpha:echo:solo",
      );
    } finally {
      await agent.close();
    }
  });
});

describe("protocol revisions", () => {
  it("serves a 2026-07-28 client (v2 SDK pinned): discover, list, call, on both nodes", async () => {
    for (const node of [0, 1]) {
      const agent = await connectModernAgent(stack.mcpUrl(T, undefined, node), { token: key });
      try {
        expect(agent.client.getProtocolEra()).toBe("modern");
        const names = (await agent.client.listTools()).tools.map((t) => t.name);
        expect(names).toEqual(expect.arrayContaining(["a_echo", "everything_echo", "m_echo"]));
        const r1 = await agent.client.callTool({ name: "a_echo", arguments: { text: "new" } });
        expect(firstText(r1)).toBe("alpha:echo:new");
        // A 2026-07-28 client in front of a 2026-07-28 upstream.
        const r2 = await agent.client.callTool({ name: "m_add", arguments: { a: 20, b: 22 } });
        expect(firstText(r2)).toBe("42");
      } finally {
        await agent.close();
      }
    }
  });

  it("answers an unsupported MCP-Protocol-Version with 400", async () => {
    const { sessionId } = await rawInitialize(stack.mcpUrl(T), { token: key });
    const res = await rawMcp(
      stack.mcpUrl(T),
      { jsonrpc: "2.0", id: 2, method: "tools/list" },
      { token: key, sessionId, protocolVersion: "1999-01-01" },
    );
    expect(res.status).toBe(400);
  });

  it("answers a notification with 202", async () => {
    const { sessionId } = await rawInitialize(stack.mcpUrl(T), { token: key });
    const res = await rawMcp(
      stack.mcpUrl(T),
      { jsonrpc: "2.0", method: "notifications/roots/list_changed" },
      { token: key, sessionId, protocolVersion: "2025-11-25" },
    );
    expect(res.status).toBe(202);
  });
});

describe("credentials toward the upstream", () => {
  it("never passes the agent's token upstream, and does send the upstream's static headers", async () => {
    const agent = await connectAgent(stack.mcpUrl(T), { token: key });
    try {
      const result = await agent.client.callTool({ name: "a_whoami", arguments: {} });
      const seen = JSON.parse(firstText(result)) as { headers: Record<string, string> };
      expect(seen.headers["x-static-token"]).toBe(STATIC_HEADER);
      const all = JSON.stringify(seen.headers);
      expect(all).not.toContain(key);
      expect(all).not.toContain("mgw_");
      expect(seen.headers.authorization ?? "").not.toContain(key);
    } finally {
      await agent.close();
    }
  });

  it("does not hand the agent's token to a 2026-07-28 upstream either", async () => {
    const agent = await connectModernAgent(stack.mcpUrl(T), { token: key });
    try {
      const seen = JSON.parse(
        firstText(await agent.client.callTool({ name: "m_whoami", arguments: {} })),
      ) as {
        headers: Record<string, string>;
      };
      expect(JSON.stringify(seen.headers)).not.toContain(key);
    } finally {
      await agent.close();
    }
  });
});

describe("relay of progress, cancellation, sampling, elicitation, roots and list_changed", () => {
  let agent: Agent;
  const toolListChanges: number[] = [];
  beforeAll(async () => {
    agent = await connectAgent(stack.mcpUrl(T), {
      token: key,
      onSampling: () => ({
        role: "assistant",
        content: { type: "text", text: "sampled-by-agent" },
        model: "e2e-model",
        stopReason: "endTurn",
      }),
      onElicit: (params) => ({
        action: "accept",
        content: { answer: `agent saw: ${(params as { message?: string }).message}` },
      }),
      roots: [{ uri: "file:///workspace/e2e", name: "e2e-root" }],
    });
    agent.client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      toolListChanges.push(Date.now());
    });
  });
  afterAll(async () => {
    await agent?.close();
  });

  it("relays progress notifications with the client's own token", async () => {
    const progress: number[] = [];
    const result = await agent.client.callTool(
      { name: "a_slow", arguments: { ms: 300, steps: 3 } },
      undefined,
      {
        onprogress: (p) => progress.push(p.progress),
      },
    );
    expect(firstText(result)).toBe("slept 300ms");
    expect(progress).toEqual([1, 2, 3]);
  });

  it("relays cancellation: the upstream sees the call aborted", async () => {
    const stats = async () =>
      JSON.parse(firstText(await agent.client.callTool({ name: "a_stats", arguments: {} }))) as {
        cancelled: number;
      };
    const before = (await stats()).cancelled;
    const ac = new AbortController();
    const call = agent.client.callTool({ name: "a_slow", arguments: { ms: 5000, steps: 50 } }, undefined, {
      signal: ac.signal,
    });
    setTimeout(() => ac.abort("test cancels"), 300);
    await expect(call).rejects.toThrow();
    await waitFor("the upstream to count the cancellation", async () => (await stats()).cancelled > before, {
      timeoutMs: 5000,
    });
  });

  it("relays sampling/createMessage to the agent and its answer back", async () => {
    const r = await agent.client.callTool({ name: "a_ask_llm", arguments: { prompt: "2+2?" } });
    expect(firstText(r)).toBe("llm said: sampled-by-agent");
  });

  it("relays elicitation/create to the agent and its answer back", async () => {
    const r = await agent.client.callTool({
      name: "a_ask_user",
      arguments: { message: "favourite colour?" },
    });
    expect(firstText(r)).toBe(`user accept: ${JSON.stringify({ answer: "agent saw: favourite colour?" })}`);
  });

  it("relays roots/list to the agent", async () => {
    const r = await agent.client.callTool({ name: "a_list_roots", arguments: {} });
    expect(JSON.parse(firstText(r))).toEqual({ roots: [{ uri: "file:///workspace/e2e", name: "e2e-root" }] });
  });

  it("refreshes the catalog on tools/list_changed and tells the agent", async () => {
    // The agent has seen the list once (list_changed is about a list the client knows).
    expect((await agent.client.listTools()).tools.map((t) => t.name)).not.toContain("a_fresh_tool");
    const before = toolListChanges.length;
    await agent.client.callTool({ name: "a_add_tool", arguments: { name: "fresh_tool" } });
    await waitFor("notifications/tools/list_changed at the agent", () => toolListChanges.length > before, {
      timeoutMs: 10_000,
    });
    await waitFor(
      "a_fresh_tool in tools/list",
      async () => (await agent.client.listTools()).tools.some((t) => t.name === "a_fresh_tool"),
      { timeoutMs: 10_000 },
    );
    expect(firstText(await agent.client.callTool({ name: "a_fresh_tool", arguments: {} }))).toBe(
      "alpha:fresh_tool",
    );
  });
});

describe("MCP Inspector CLI, unmodified", () => {
  it("lists the tenant's tools with a Bearer key", async () => {
    const { nodeBin, inspectorMain } = ensureInspector({ log: (m) => console.log(`[inspector] ${m}`) });
    const home = mkdtempSync(join(tmpdir(), "gatehouse-inspector-home-"));
    const r = spawnSync(
      nodeBin,
      [
        inspectorMain,
        "--cli",
        stack.mcpUrl(T),
        "--method",
        "tools/list",
        "--header",
        `Authorization: Bearer ${key}`,
      ],
      { encoding: "utf8", env: { ...process.env, HOME: home }, timeout: 60_000 },
    );
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    const names = (JSON.parse(r.stdout) as { tools: Array<{ name: string }> }).tools.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(["a_echo", "everything_echo"]));
  }, 240_000);
});

describe("pagination and session lifecycle", () => {
  it("follows the upstream's cursors and pages the merged list with its own", async () => {
    const agent = await connectAgent(stack.mcpUrl(PAGED), { token: pagedKey });
    try {
      const names: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await agent.client.listTools(cursor ? { cursor } : {});
        names.push(...page.tools.map((t) => t.name));
        cursor = page.nextCursor;
        pages++;
      } while (cursor && pages < 20);
      // 10 base tools + 130 bulk tools, each exactly once, all prefixed.
      expect(new Set(names).size).toBe(names.length);
      expect(names).toHaveLength(140);
      expect(names).toContain("b_bulk_129");
      expect(names.every((n) => n.startsWith("b_"))).toBe(true);
      expect(pages).toBeGreaterThan(1);
      expect(firstText(await agent.client.callTool({ name: "b_bulk_129", arguments: {} }))).toBe(
        "bulk:bulk_129",
      );
      // MCP spec, server/utilities/pagination, "Error Handling": invalid cursors SHOULD result
      // in -32602 (Invalid params).
      const err = await expectThrows(() => agent.client.listTools({ cursor: "not-a-cursor" }));
      expect((err as { code?: number }).code).toBe(-32602);
    } finally {
      await agent.close();
    }
  });

  it("DELETE ends a session on every node", async () => {
    const { sessionId } = await rawInitialize(stack.mcpUrl(T), { token: key });
    const del = await rawMcp(stack.mcpUrl(T), undefined, {
      method: "DELETE",
      token: key,
      sessionId,
      protocolVersion: "2025-11-25",
    });
    expect([200, 202, 204]).toContain(del.status);
    for (const node of [0, 1]) {
      const res = await rawMcp(
        stack.mcpUrl(T, undefined, node),
        { jsonrpc: "2.0", id: 3, method: "tools/list" },
        { token: key, sessionId, protocolVersion: "2025-11-25" },
      );
      expect(res.status).toBe(404);
    }
  });

  it("accepts the key in X-API-Key as well", async () => {
    const agent = await connectAgent(stack.mcpUrl(T), { headers: { "X-API-Key": key } });
    try {
      expect(firstText(await agent.client.callTool({ name: "a_echo", arguments: { text: "xk" } }))).toBe(
        "alpha:echo:xk",
      );
    } finally {
      await agent.close();
    }
  });
});
