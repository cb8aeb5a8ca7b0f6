// The core of the gateway under each transport mode an operator can choose: the defaults,
// GATEWAY_SSE_RESPONSES=false (JSON answers unless streaming) and GATEWAY_UPSTREAM_HTTP_LINK=false
// (one SDK client per upstream session instead of the lean HTTP link). Each mode runs the same
// set on two nodes: list and call, a session resumed on the other node over the same upstream
// session, progress and elicitation relayed, TIMEOUT with the call cancelled upstream,
// UPSTREAM_ERROR keeping the upstream's code and data, and the upstream's static headers.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ElicitRequestSchema, McpError } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { GatewayConfig } from "../src/config/gateway.config.js";
import { type Fixture, startFixture } from "./fixtures.js";
import { createHarness, type Harness, type Node, sealer, seedKey } from "./harness.js";

let h: Harness;
let alpha: Fixture;
let slow: Fixture;
let tenant: { id: string; slug: string };
let key: string;

beforeAll(async () => {
  h = await createHarness();
  alpha = await startFixture("alpha");
  // Its own fixture, so that everything alpha receives is alpha's upstream traffic.
  slow = await startFixture("slow");
  const t = await h.db.prisma.tenant.create({
    data: { slug: `modes-${Date.now().toString(36)}`, name: "Modes" },
  });
  tenant = { id: t.id, slug: t.slug };
  await h.db.prisma.upstream.create({
    data: {
      tenantId: t.id,
      name: "alpha",
      url: alpha.url,
      transport: "streamable_http",
      toolPrefix: "alpha_",
      headersSealed: sealer.sealJson({ "x-upstream-token": "alpha-static" }),
    },
  });
  await h.db.prisma.upstream.create({
    data: {
      tenantId: t.id,
      name: "slowpoke",
      url: slow.url,
      transport: "streamable_http",
      toolPrefix: "slowpoke_",
      timeoutMs: 300,
    },
  });
  await h.db.prisma.policy.create({
    data: { tenantId: t.id, version: 1, document: { defaultEffect: "allow", rules: [] } },
  });
  key = (await seedKey(h.db, t.id, { roles: ["admin"] })).key;
}, 60_000);

afterAll(async () => {
  await h?.close();
  await alpha?.close();
  await slow?.close();
});

async function waitUntil(what: string, cond: () => boolean): Promise<void> {
  const until = Date.now() + 15_000;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const modes: Array<{ name: string; config: Partial<GatewayConfig> }> = [
  { name: "defaults", config: {} },
  { name: "GATEWAY_SSE_RESPONSES=false", config: { sseResponses: false } },
  { name: "GATEWAY_UPSTREAM_HTTP_LINK=false", config: { upstreamHttpLink: false } },
];

describe.each(modes)("core set with $name", ({ config }) => {
  let nodeA: Node;
  let nodeB: Node;

  beforeAll(async () => {
    nodeA = await h.startNode({ config });
    nodeB = await h.startNode({ config });
  });
  afterAll(async () => {
    await nodeA?.close();
    await nodeB?.close();
  });

  async function connect(node: Node, opts: { sessionId?: string; elicit?: boolean } = {}) {
    const transport = new StreamableHTTPClientTransport(new URL(`${node.url}/t/${tenant.slug}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${key}` } },
      ...(opts.sessionId ? { sessionId: opts.sessionId } : {}),
    });
    const client = new Client(
      { name: "modes-agent", version: "1" },
      { capabilities: opts.elicit ? { elicitation: {} } : {} },
    );
    if (opts.elicit) {
      client.setRequestHandler(ElicitRequestSchema, async () => ({
        action: "accept",
        content: { answer: "yes" },
      }));
    }
    await client.connect(transport);
    return { client, transport };
  }

  it("answers as the mode says: SSE for a plain call by default, JSON when SSE responses are off", async () => {
    const url = `${nodeA.url}/t/${tenant.slug}/mcp`;
    const hdrs = {
      authorization: `Bearer ${key}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
    };
    const init = await fetch(url, {
      method: "POST",
      headers: hdrs,
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: {
          protocolVersion: "2025-11-25",
          capabilities: {},
          clientInfo: { name: "raw", version: "1" },
        },
      }),
    });
    await init.text();
    const session = {
      ...hdrs,
      "mcp-session-id": init.headers.get("mcp-session-id") ?? "",
      "mcp-protocol-version": "2025-11-25",
    };
    await (
      await fetch(url, {
        method: "POST",
        headers: session,
        body: '{"jsonrpc":"2.0","method":"notifications/initialized"}',
      })
    ).text();
    const res = await fetch(url, {
      method: "POST",
      headers: session,
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 2,
        method: "tools/call",
        params: { name: "alpha_echo", arguments: { text: "raw" } },
      }),
    });
    const body = await res.text();
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain(
      config.sseResponses === false ? "application/json" : "text/event-stream",
    );
    expect(body).toContain("alpha:echo:raw");
  });

  it("lists and calls; the other node resumes the session on the same upstream session", async () => {
    const { client, transport } = await connect(nodeA);
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(["alpha_echo", "alpha_slow", "slowpoke_echo"]));
    expect((await client.callTool({ name: "alpha_echo", arguments: { text: "one" } })).content).toEqual([
      { type: "text", text: "alpha:echo:one" },
    ]);
    const upstreamSession = alpha.echoSessions.at(-1);
    expect(upstreamSession).toBeTruthy();
    const { client: other } = await connect(nodeB, { sessionId: transport.sessionId! });
    expect((await other.callTool({ name: "alpha_echo", arguments: { text: "two" } })).content).toEqual([
      { type: "text", text: "alpha:echo:two" },
    ]);
    expect(alpha.echoSessions.at(-1)).toBe(upstreamSession);
    await other.close();
    await client.close();
  });

  it("relays progress and elicitation", async () => {
    const { client } = await connect(nodeA, { elicit: true });
    const seen: number[] = [];
    const r = await client.callTool({ name: "alpha_slow", arguments: { steps: 3 } }, undefined, {
      onprogress: (p) => seen.push(p.progress),
    });
    expect(r.content).toEqual([{ type: "text", text: "done 3" }]);
    expect(seen).toEqual([1, 2, 3]);
    const asked = await client.callTool({ name: "alpha_ask_user", arguments: { message: "ok?" } });
    expect(asked.content).toEqual([{ type: "text", text: 'accept:{"answer":"yes"}' }]);
    await client.close();
  });

  it("TIMEOUT past the upstream's timeoutMs: cancelled upstream, and the session goes on", async () => {
    const { client } = await connect(nodeA);
    const runs = slow.slowRuns.length;
    const err = await client
      .callTool({ name: "slowpoke_slow", arguments: { steps: 500 } })
      .catch((e: unknown) => e);
    expect((err as McpError).data).toMatchObject({ code: "TIMEOUT", upstream: "slowpoke" });
    const run = slow.slowRuns[runs];
    expect(run?.finished).toBe(false);
    await waitUntil("the upstream to see the cancellation", () => run?.cancelled === true);
    expect((await client.callTool({ name: "slowpoke_echo", arguments: { text: "on" } })).content).toEqual([
      { type: "text", text: "slow:echo:on" },
    ]);
    await client.close();
  });

  it("an upstream's JSON-RPC error is UPSTREAM_ERROR with the upstream's code and data", async () => {
    const { client } = await connect(nodeA);
    const err = await client.getPrompt({ name: "alpha_broken" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(McpError);
    expect((err as McpError).code).toBe(-32050);
    expect((err as McpError).message).toContain("alpha has no prompt today");
    expect((err as McpError).data).toMatchObject({
      code: "UPSTREAM_ERROR",
      upstream: "alpha",
      reason: "closed",
    });
    // The session is fine afterwards.
    expect(
      (await client.getPrompt({ name: "alpha_greet", arguments: { who: "Ann" } })).messages,
    ).toHaveLength(1);
    await client.close();
  });

  it("sends the upstream's static headers and never the agent's key", async () => {
    const seen = alpha.requestHeaders.length;
    const { client } = await connect(nodeB);
    await client.callTool({ name: "alpha_echo", arguments: { text: "h" } });
    await client.close();
    const sent = alpha.requestHeaders.slice(seen);
    expect(sent.length).toBeGreaterThan(0);
    for (const hd of sent) {
      expect(hd["x-upstream-token"]).toBe("alpha-static");
      expect(hd.authorization).toBeUndefined();
      expect(JSON.stringify(hd)).not.toContain(key);
    }
    // Which link carried the agent's upstream session: the lean HTTP link is node:http (no
    // User-Agent), the SDK client is fetch (User-Agent "node"). Shows the mode is in effect.
    const upstreamSession = alpha.echoSessions.at(-1);
    const ofSession = sent.filter((hd) => hd["mcp-session-id"] === upstreamSession);
    expect(ofSession.length).toBeGreaterThan(0);
    const viaSdk = ofSession.every((hd) => hd["user-agent"] === "node");
    expect(viaSdk).toBe(config.upstreamHttpLink === false);
  });
});
