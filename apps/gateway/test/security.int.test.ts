// Issue 8, the gateway data plane: holes one tenant (or one upstream, or one caller) could use
// against another or against the shared node. Real Postgres, real Redis, real MCP upstreams (the
// SDK fixtures, and the hostile fixture of test/fixtures/hostile-server.mjs), real gateway nodes.
import { connect as tcpConnect } from "node:net";
import type { Db } from "@gatehouse/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Fixture,
  HOSTILE_SCRIPT,
  type HostileFixture,
  startFixture,
  startHostileFixture,
} from "./fixtures.js";
import { createHarness, type Harness, type Node, seedKey, sseMessages } from "./harness.js";

let h: Harness;
let db: Db;
let alpha: Fixture;
let bravo: Fixture;
let nodeA: Node;
let nodeB: Node;
let hostile: HostileFixture;
/** A node with small limits: 1 MiB messages, 1 s of silence inside an answer. */
let limited: Node;
const tenantH = { id: "", slug: "" };
let keyH: string;
const tenantA = { id: "", slug: "" };
const tenantB = { id: "", slug: "" };
let keyA: string;
let keyB: string;

const ALLOW_ALL = { defaultEffect: "allow", rules: [] };

function headers(key: string, extra: Record<string, string> = {}): Record<string, string> {
  return { authorization: `Bearer ${key}`, ...extra };
}

async function post(
  node: Node,
  path: string,
  body: unknown,
  hdrs: Record<string, string>,
): Promise<Response> {
  return await fetch(`${node.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...hdrs },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** A 2025-era session (initialize + initialized) of `key` on `path`; the headers to use it. */
async function session(
  node: Node,
  key: string,
  path: string,
  capabilities: Record<string, unknown> = {},
): Promise<Record<string, string>> {
  const init = await post(
    node,
    path,
    {
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-11-25", capabilities, clientInfo: { name: "sec", version: "1" } },
    },
    headers(key),
  );
  expect(init.status).toBe(200);
  const hdrs = headers(key, {
    "mcp-session-id": init.headers.get("mcp-session-id")!,
    "mcp-protocol-version": "2025-11-25",
  });
  await post(node, path, { jsonrpc: "2.0", method: "notifications/initialized" }, hdrs);
  return hdrs;
}

/** One sample of a Prometheus text exposition (0 when absent). */
function sample(text: string, name: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line ? Number(line.slice(name.length + 1)) : 0;
}

/** Polls `check` until it holds or ~5 s pass (then the assertions that follow tell what went wrong). */
async function until(check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function metricsOf(node: Node): Promise<string> {
  return await (await fetch(`${node.metricsUrl}/metrics`)).text();
}

beforeAll(async () => {
  h = await createHarness();
  db = h.db;
  alpha = await startFixture("alpha");
  bravo = await startFixture("bravo");
  const stamp = Date.now().toString(36);
  for (const [t, slug, f] of [
    [tenantA, `sec-a-${stamp}`, alpha],
    [tenantB, `sec-b-${stamp}`, bravo],
  ] as const) {
    const row = await db.prisma.tenant.create({ data: { slug, name: slug } });
    t.id = row.id;
    t.slug = row.slug;
    await db.prisma.upstream.create({
      data: { tenantId: row.id, name: "up", url: f.url, transport: "streamable_http", toolPrefix: "up_" },
    });
    await db.prisma.policy.create({ data: { tenantId: row.id, version: 1, document: ALLOW_ALL } });
  }
  keyA = (await seedKey(db, tenantA.id, { roles: ["admin"] })).key;
  keyB = (await seedKey(db, tenantB.id, { roles: ["admin"] })).key;
  nodeA = await h.startNode();
  nodeB = await h.startNode();

  hostile = await startHostileFixture();
  const th = await db.prisma.tenant.create({ data: { slug: `sec-h-${stamp}`, name: "hostile" } });
  tenantH.id = th.id;
  tenantH.slug = th.slug;
  // Upstream timeouts of 15 s: without the limits, the calls below would hang that long.
  await db.prisma.upstream.create({
    data: {
      tenantId: th.id,
      name: "hostile",
      url: hostile.url,
      transport: "streamable_http",
      toolPrefix: "h_",
      timeoutMs: 15_000,
    },
  });
  await db.prisma.upstream.create({
    data: {
      tenantId: th.id,
      name: "stdio",
      command: process.execPath,
      args: [HOSTILE_SCRIPT, "--stdio"],
      transport: "stdio",
      toolPrefix: "s_",
      timeoutMs: 15_000,
    },
  });
  await db.prisma.policy.create({ data: { tenantId: th.id, version: 1, document: ALLOW_ALL } });
  keyH = (await seedKey(db, th.id, { roles: ["admin"] })).key;
  limited = await h.startNode({
    allowStdio: true,
    // (a stdio upstream starts a Node process: give it time on a loaded machine)
    config: {
      upstreamMaxMessageBytes: 1024 * 1024,
      upstreamIdleTimeoutMs: 1000,
      upstreamConnectTimeoutMs: 15_000,
    },
  });
}, 60_000);

afterAll(async () => {
  await h?.close();
  await alpha?.close();
  await bravo?.close();
  await hostile?.close();
});

/** Calls a tool over a raw session and returns the final JSON-RPC message (JSON or the SSE stream's last). */
async function callTool(
  node: Node,
  path: string,
  hdrs: Record<string, string>,
  name: string,
  args: Record<string, unknown> = {},
): Promise<Record<string, unknown>> {
  const res = await post(
    node,
    path,
    { jsonrpc: "2.0", id: 77, method: "tools/call", params: { name, arguments: args } },
    hdrs,
  );
  if (!(res.headers.get("content-type") ?? "").includes("text/event-stream"))
    return (await res.json()) as Record<string, unknown>;
  const stream = sseMessages(res);
  for (;;) {
    const m = await stream.next();
    if (m.id === 77) return m;
  }
}

describe("relayed server-to-client requests are bound to their session", () => {
  it("another tenant's caller cannot answer B's elicitation, on the same node or another; B's own answer still counts", async () => {
    const pathA = `/t/${tenantA.slug}/mcp`;
    const pathB = `/t/${tenantB.slug}/mcp`;
    const hdrsB = await session(nodeA, keyB, pathB, { elicitation: {} });
    const hdrsA1 = await session(nodeA, keyA, pathA, { elicitation: {} });
    const hdrsA2 = await session(nodeB, keyA, pathA, { elicitation: {} });
    const strayBefore = sample(await metricsOf(nodeA), "gatehouse_gateway_stray_client_responses_total");
    const call = await post(
      nodeA,
      pathB,
      {
        jsonrpc: "2.0",
        id: 5,
        method: "tools/call",
        params: { name: "up_ask_user", arguments: { message: "B's question" } },
      },
      hdrsB,
    );
    const stream = sseMessages(call);
    const ask = await stream.next();
    expect(ask.method).toBe("elicitation/create");
    // Not a node id and a counter: nothing to guess from /healthz.
    expect(String(ask.id)).toMatch(/:[A-Za-z0-9_-]{22,}$/);
    // Tenant A's caller learned (or guessed) the id: its answers, on this node and on the other, are ignored.
    const forged = {
      jsonrpc: "2.0",
      id: ask.id,
      result: { action: "accept", content: { answer: "from A" } },
    };
    expect((await post(nodeA, pathA, forged, hdrsA1)).status).toBe(202);
    expect((await post(nodeB, pathA, forged, hdrsA2)).status).toBe(202);
    // Wait (bounded) until both are accounted for, then answer as B.
    await until(
      async () =>
        sample(await metricsOf(nodeA), "gatehouse_gateway_stray_client_responses_total") - strayBefore >= 2,
    );
    const own = { jsonrpc: "2.0", id: ask.id, result: { action: "accept", content: { answer: "from B" } } };
    expect((await post(nodeA, pathB, own, hdrsB)).status).toBe(202);
    const final = await stream.next();
    expect(final).toMatchObject({
      id: 5,
      result: { content: [{ type: "text", text: 'accept:{"answer":"from B"}' }] },
    });
    // Both forged answers were counted: one where it landed, one on the node that sent the request.
    const strayAfter = sample(await metricsOf(nodeA), "gatehouse_gateway_stray_client_responses_total");
    expect(strayAfter - strayBefore).toBe(2);
  });
});

describe("upstream answers are bounded", () => {
  const path = () => `/t/${tenantH.slug}/mcp`;
  const overCap = {
    code: -32011,
    data: { code: "UPSTREAM_ERROR", limit: "maxMessageBytes", limitBytes: 1048576 },
  };

  it("HTTP link: an SSE event over the cap ends the call with UPSTREAM_ERROR naming the limit; the session goes on", async () => {
    const hdrs = await session(limited, keyH, path());
    const r = await callTool(limited, path(), hdrs, "h_huge", { bytes: 2 * 1024 * 1024 });
    expect(r.error).toMatchObject(overCap);
    expect(String((r.error as { message: string }).message)).toContain("GATEWAY_UPSTREAM_MAX_MESSAGE_BYTES");
    expect(await callTool(limited, path(), hdrs, "h_ok")).toMatchObject({
      result: { content: [{ text: "ok" }] },
    });
  });

  it("HTTP link: a JSON body over the cap, the same", async () => {
    const hdrs = await session(limited, keyH, path());
    const r = await callTool(limited, path(), hdrs, "h_huge", { bytes: 2 * 1024 * 1024, json: true });
    expect(r.error).toMatchObject(overCap);
  });

  it("HTTP link: an event that never ends is cut at the cap and the upstream request is closed", async () => {
    const hdrs = await session(limited, keyH, path());
    const before = await hostile.stats();
    const r = await callTool(limited, path(), hdrs, "h_endless");
    expect(r.error).toMatchObject(overCap);
    await until(async () => (await hostile.stats()).endlessClosed > before.endlessClosed);
    const after = await hostile.stats();
    expect(after.endlessClosed).toBe(after.endlessOpen);
  });

  it("HTTP link: an answer that goes silent past the idle timeout ends with TIMEOUT naming it", async () => {
    const hdrs = await session(limited, keyH, path());
    const r = await callTool(limited, path(), hdrs, "h_stall");
    expect(r.error).toMatchObject({ data: { code: "TIMEOUT", limit: "idleMs", limitMs: 1000 } });
  });

  it("SDK link (a session with elicitation): an SSE event over the cap, the same error", async () => {
    const hdrs = await session(limited, keyH, path(), { elicitation: {} });
    const r = await callTool(limited, path(), hdrs, "h_huge", { bytes: 2 * 1024 * 1024 });
    expect(r.error).toMatchObject(overCap);
  });

  it("stdio: a line that never ends is cut at the cap, the same error", async () => {
    const hdrs = await session(limited, keyH, path());
    const r = await callTool(limited, path(), hdrs, "s_huge");
    expect(r.error).toMatchObject(overCap);
  });
});

describe("metrics are not on the agents' port", () => {
  it("the public port answers 404 for /metrics; the metrics port wants the token when one is set", async () => {
    const node = await h.startNode({ config: { metricsToken: "scrape-me" } });
    const pub = await fetch(`${node.url}/metrics`);
    expect(pub.status).toBe(404);
    expect(await pub.text()).not.toContain("gatehouse_gateway");
    const anonymous = await fetch(`${node.metricsUrl}/metrics`);
    expect(anonymous.status).toBe(401);
    expect(await anonymous.text()).not.toContain("gatehouse_gateway_http");
    const wrong = await fetch(`${node.metricsUrl}/metrics`, {
      headers: { authorization: "Bearer scrape-mf" },
    });
    expect(wrong.status).toBe(401);
    const scraped = await fetch(`${node.metricsUrl}/metrics`, {
      headers: { authorization: "Bearer scrape-me" },
    });
    expect(scraped.status).toBe(200);
    expect(await scraped.text()).toContain("gatehouse_gateway_http_requests_total");
    await node.close();
  });
});

describe("the missing bounds", () => {
  it("a request whose body trickles forever is cut with 408 (requestTimeout)", async () => {
    const node = await h.startNode({ config: { requestTimeoutMs: 1500, headersTimeoutMs: 1000 } });
    const u = new URL(node.url);
    const socket = tcpConnect(Number(u.port), u.hostname);
    let answer = "";
    socket.on("data", (c) => {
      answer += c.toString();
    });
    const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
    socket.write(
      `POST /t/${tenantA.slug}/mcp HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\nauthorization: Bearer ${keyA}\r\ncontent-length: 1000\r\n\r\n{`,
    );
    // One byte every 200 ms: never idle long enough for a socket timeout, never done either.
    const drip = setInterval(() => socket.writable && socket.write(" "), 200);
    await closed;
    clearInterval(drip);
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
    await node.close();
  });

  it("initialize with oversized capabilities is refused, naming the field (nothing stored)", async () => {
    const res = await post(
      nodeA,
      `/t/${tenantA.slug}/mcp`,
      {
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: {
          protocolVersion: "2025-11-25",
          capabilities: { experimental: { junk: "x".repeat(32 * 1024) } },
          clientInfo: { name: "big", version: "1" },
        },
      },
      headers(keyA),
    );
    expect(res.status).toBe(400);
    expect(res.headers.get("mcp-session-id")).toBeNull();
    const body = (await res.json()) as { error: { message: string; data: Record<string, unknown> } };
    expect(body.error.data).toMatchObject({ code: "INVALID_REQUEST", field: "params.capabilities" });
    expect(body.error.message).toContain("params.capabilities");
  });

  it("subscriptions/listen streams are capped per principal", async () => {
    const node = await h.startNode({ config: { maxListenersPerPrincipal: 2 } });
    const listen = (id: number) =>
      fetch(`${node.url}/t/${tenantA.slug}/mcp`, {
        method: "POST",
        headers: {
          ...headers(keyA),
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          "mcp-protocol-version": "2026-07-28",
          "mcp-method": "subscriptions/listen",
        },
        body: JSON.stringify({
          jsonrpc: "2.0",
          id,
          method: "subscriptions/listen",
          params: {
            notifications: { toolsListChanged: true },
            _meta: {
              "io.modelcontextprotocol/protocolVersion": "2026-07-28",
              "io.modelcontextprotocol/clientCapabilities": {},
            },
          },
        }),
      });
    const open = [await listen(1), await listen(2)];
    for (const r of open) expect(r.status).toBe(200);
    const third = await listen(3);
    expect(third.status).toBe(429);
    expect(((await third.json()) as { error: { data: unknown } }).error.data).toMatchObject({
      code: "RATE_LIMITED",
      scope: "listeners",
    });
    // Another principal is not affected.
    for (const r of open) await r.body?.cancel();
    await node.close();
  });

  it("an SSE reader that stops reading is dropped once its backlog passes the cap (memory stays bounded)", async () => {
    const node = await h.startNode({ config: { sseMaxBufferedBytes: 256 * 1024 } });
    const p = `/t/${tenantH.slug}/mcp`;
    const hdrs = await session(node, keyH, p);
    const dropped = async () => sample(await metricsOf(node), "gatehouse_gateway_sse_streams_dropped_total");
    const before = await dropped();
    const u = new URL(node.url);
    const socket = tcpConnect(Number(u.port), u.hostname);
    await new Promise((r) => socket.once("connect", r));
    const body = JSON.stringify({
      jsonrpc: "2.0",
      id: 9,
      method: "tools/call",
      params: { name: "h_flood", arguments: { count: 400, size: 64 * 1024 } },
    });
    const head = Object.entries({
      ...hdrs,
      host: "localhost",
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "content-length": String(Buffer.byteLength(body)),
    })
      .map(([k, v]) => `${k}: ${v}`)
      .join("\r\n");
    socket.write(`POST ${p} HTTP/1.1\r\n${head}\r\n\r\n${body}`);
    socket.pause(); // a reader that never reads: ~25 MB of notifications would pile up in the node
    await until(async () => (await dropped()) > before, 15_000);
    expect(await dropped()).toBe(before + 1);
    socket.destroy();
    await node.close();
  });
});
