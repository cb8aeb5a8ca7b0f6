// The gateway end to end in one process: real Postgres (fresh database), real Redis (own key
// prefix), real MCP upstreams over HTTP, the SDK client as the agent, two gateway nodes.

import { createServer } from "node:net";
import type { Db } from "@gatehouse/db";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ElicitRequestSchema, McpError } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Fixture, startFixture } from "./fixtures.js";
import { createHarness, type Harness, type Node, sealer, seedKey, sseMessages } from "./harness.js";

let h: Harness;
let db: Db;
let alpha: Fixture;
let beta: Fixture;
let nodeA: Node;
let nodeB: Node;
let acme: { id: string; slug: string };
let other: { id: string; slug: string };
let adminKey: string;
let readerKey: { id: string; key: string };
let otherKey: string;

const POLICY = {
  defaultEffect: "deny",
  rules: [
    { id: "admins-all", effect: "allow", principals: ["role:admin"] },
    {
      id: "readers-read",
      effect: "allow",
      principals: ["role:reader"],
      tools: ["echo", "get_*", "slow", "ask_user", "log_something"],
    },
    { id: "no-drop", effect: "deny", tools: ["drop_*"] },
    { id: "beta-secret-hidden", effect: "deny", upstreams: ["beta"], tools: ["get_secret"] },
  ],
};

function headers(key: string, extra: Record<string, string> = {}): Record<string, string> {
  return { authorization: `Bearer ${key}`, ...extra };
}

async function connect(
  node: Node,
  key: string,
  path = `/t/${acme.slug}/mcp`,
  opts: { sessionId?: string; onElicit?: (p: unknown) => unknown } = {},
): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const transport = new StreamableHTTPClientTransport(new URL(`${node.url}${path}`), {
    requestInit: { headers: headers(key) },
    ...(opts.sessionId ? { sessionId: opts.sessionId } : {}),
  });
  const client = new Client(
    { name: "test-agent", version: "1.0.0" },
    { capabilities: opts.onElicit ? { elicitation: {} } : {} },
  );
  if (opts.onElicit) {
    const onElicit = opts.onElicit;
    client.setRequestHandler(ElicitRequestSchema, async (req) => onElicit(req.params) as never);
  }
  await client.connect(transport);
  return { client, transport };
}

async function post(node: Node, path: string, body: string, hdrs: Record<string, string>): Promise<Response> {
  return await fetch(`${node.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...hdrs },
    body,
  });
}

async function rawSession(
  node: Node,
  key: string,
  capabilities: Record<string, unknown> = {},
): Promise<Record<string, string>> {
  const init = await post(
    node,
    `/t/${acme.slug}/mcp`,
    JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-11-25", capabilities, clientInfo: { name: "raw", version: "1" } },
    }),
    headers(key),
  );
  const hdrs = headers(key, {
    "mcp-session-id": init.headers.get("mcp-session-id")!,
    "mcp-protocol-version": "2025-11-25",
  });
  await post(node, `/t/${acme.slug}/mcp`, '{"jsonrpc":"2.0","method":"notifications/initialized"}', hdrs);
  return hdrs;
}

/** Polls `cond` until true; fails naming `what` after a generous bound (a condition, not a speed). */
async function waitUntil(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 15_000) {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const INIT = JSON.stringify({
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1" } },
});

/** A port nothing listens on (not port 1: fetch refuses that one outright as a "bad port"). */
let downPort: number;
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

beforeAll(async () => {
  downPort = await closedPort();
  h = await createHarness();
  db = h.db;
  alpha = await startFixture("alpha");
  beta = await startFixture("beta");
  const t = await db.prisma.tenant.create({
    data: {
      slug: `acme-${Date.now().toString(36)}`,
      name: "Acme",
      settings: { allowedOrigins: ["https://console.acme.test"] },
    },
  });
  acme = { id: t.id, slug: t.slug };
  const o = await db.prisma.tenant.create({
    data: { slug: `other-${Date.now().toString(36)}`, name: "Other" },
  });
  other = { id: o.id, slug: o.slug };
  await db.prisma.upstream.create({
    data: {
      tenantId: acme.id,
      name: "alpha",
      url: alpha.url,
      transport: "streamable_http",
      toolPrefix: "alpha_",
      headersSealed: sealer.sealJson({ "x-upstream-token": "alpha-static" }),
    },
  });
  await db.prisma.upstream.create({
    data: {
      tenantId: acme.id,
      name: "beta",
      url: beta.url,
      transport: "streamable_http",
      toolPrefix: "beta_",
    },
  });
  await db.prisma.upstream.create({
    data: {
      tenantId: acme.id,
      name: "down",
      url: `http://127.0.0.1:${downPort}/mcp`,
      transport: "streamable_http",
      toolPrefix: "down_",
    },
  });
  await db.prisma.upstream.create({
    data: {
      tenantId: acme.id,
      name: "local",
      command: "node",
      args: ["-e", "0"],
      transport: "stdio",
      toolPrefix: "local_",
    },
  });
  await db.prisma.upstream.create({
    data: {
      tenantId: acme.id,
      name: "slowpoke",
      // beta, not alpha: alpha's requests all carry its static header (checked below).
      url: beta.url,
      transport: "streamable_http",
      toolPrefix: "slowpoke_",
      timeoutMs: 300,
    },
  });
  await db.prisma.policy.create({ data: { tenantId: acme.id, version: 1, document: POLICY } });
  adminKey = (await seedKey(db, acme.id, { agent: "boss", roles: ["admin"] })).key;
  readerKey = await seedKey(db, acme.id, { agent: "scout", roles: ["reader"] });
  otherKey = (await seedKey(db, other.id, { roles: ["admin"] })).key;
  nodeA = await h.startNode();
  nodeB = await h.startNode();
}, 60_000);

afterAll(async () => {
  await h?.close();
  await alpha?.close();
  await beta?.close();
});

describe("operations endpoints", () => {
  it("answers /healthz and /readyz; /metrics only on the metrics port, never on the agents' one", async () => {
    expect((await fetch(`${nodeA.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${nodeA.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ database: true, bus: true });
    const m = await (await fetch(`${nodeA.metricsUrl}/metrics`)).text();
    expect(m).toContain("gatehouse_gateway_http_requests_total");
    expect((await fetch(`${nodeA.metricsUrl}/readyz`)).status).toBe(200);
    // Series are labelled by tenant, upstream and tool: nothing of them on the public port.
    const pub = await fetch(`${nodeA.url}/metrics`);
    expect(pub.status).toBe(404);
    expect(await pub.text()).not.toContain("gatehouse_gateway");
  });
});

describe("auth", () => {
  it("401 without credentials, with the RFC 9728 resource_metadata challenge", async () => {
    const res = await post(nodeA, `/t/${acme.slug}/mcp`, INIT, {});
    expect(res.status).toBe(401);
    // Issue 9: acme has no identity provider, so the challenge and the error say that OAuth
    // sign-in cannot work and an API key is what to send.
    expect(res.headers.get("www-authenticate")).toBe(
      `Bearer resource_metadata="http://localhost:8080/.well-known/oauth-protected-resource/t/${acme.slug}/mcp", error_description="This tenant has no identity provider, so OAuth sign-in cannot work here; send an API key (Authorization: Bearer mgw_...)"`,
    );
    const body = (await res.json()) as { error: { message: string; data: { code: string } } };
    expect(body.error.data.code).toBe("UNAUTHENTICATED");
    expect(body.error.message).toContain("OAuth sign-in cannot work here; send an API key");
  });

  it("a key of another tenant gets exactly the 401 of an unknown key", async () => {
    const foreign = await post(nodeA, `/t/${acme.slug}/mcp`, INIT, headers(otherKey));
    const unknown = await post(nodeA, `/t/${acme.slug}/mcp`, INIT, headers(`mgw_${"x".repeat(43)}`));
    expect(foreign.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(foreign.headers.get("www-authenticate")).toBe(unknown.headers.get("www-authenticate"));
    expect(await foreign.text()).toBe(await unknown.text());
  });

  it("accepts the key in X-API-Key too", async () => {
    const res = await post(nodeA, `/t/${acme.slug}/mcp`, INIT, { "x-api-key": adminKey });
    expect(res.status).toBe(200);
    expect(res.headers.get("mcp-session-id")).toMatch(/^[A-Za-z0-9_-]{32}$/);
  });

  it("serves RFC 9728 protected resource metadata", async () => {
    const res = await fetch(`${nodeA.url}/.well-known/oauth-protected-resource/t/${acme.slug}/mcp`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      resource: `http://localhost:8080/t/${acme.slug}/mcp`,
      authorization_servers: [],
      bearer_methods_supported: ["header"],
    });
  });

  it("404 for an unknown tenant", async () => {
    const res = await post(nodeA, "/t/no-such-tenant/mcp", INIT, headers(adminKey));
    expect(res.status).toBe(404);
  });
});

describe("DNS rebinding and origin checks", () => {
  it("403 for a foreign Origin, OK for the tenant's allowed origin and for none", async () => {
    expect(
      (await post(nodeA, `/t/${acme.slug}/mcp`, INIT, headers(adminKey, { origin: "https://evil.example" })))
        .status,
    ).toBe(403);
    expect(
      (
        await post(
          nodeA,
          `/t/${acme.slug}/mcp`,
          INIT,
          headers(adminKey, { origin: "https://console.acme.test" }),
        )
      ).status,
    ).toBe(200);
    expect(
      (await post(nodeA, `/t/${acme.slug}/mcp`, INIT, headers(adminKey, { origin: "http://localhost:8080" })))
        .status,
    ).toBe(200);
  });

  it("403 for a foreign Host header", async () => {
    const { request } = await import("node:http");
    const status = await new Promise<number>((resolve, reject) => {
      const u = new URL(nodeA.url);
      const req = request(
        {
          host: u.hostname,
          port: u.port,
          path: `/t/${acme.slug}/mcp`,
          method: "POST",
          headers: {
            host: "evil.example:80",
            "content-type": "application/json",
            authorization: `Bearer ${adminKey}`,
          },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on("error", reject);
      req.end(INIT);
    });
    expect(status).toBe(403);
  });
});

describe("garbage in, JSON-RPC errors out", () => {
  const path = () => `/t/${acme.slug}/mcp`;
  it("answers malformed bodies with catalogue codes and stays up", async () => {
    const cases: Array<[string, number, string]> = [
      ["{not json", 400, "PARSE_ERROR"],
      ["[]", 400, "INVALID_REQUEST"],
      ['{"jsonrpc":"1.0","id":1,"method":"x"}', 400, "INVALID_REQUEST"],
      ['{"jsonrpc":"2.0","id":{},"method":"tools/list"}', 400, "INVALID_REQUEST"],
      ['"just a string"', 400, "INVALID_REQUEST"],
      ['{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}', 400, "INVALID_REQUEST"],
      ['{"jsonrpc":"2.0","id":1,"method":"tools/list","params":[1]}', 400, "INVALID_REQUEST"],
    ];
    for (const [body, status, code] of cases) {
      const res = await post(nodeA, path(), body, headers(adminKey));
      expect(res.status, body).toBe(status);
      const json = (await res.json()) as { jsonrpc: string; error: { code: number; data: { code: string } } };
      expect(json.jsonrpc).toBe("2.0");
      expect(json.error.data.code, body).toBe(code);
    }
    const big = JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "tools/list",
      params: { pad: "x".repeat(100_000) },
    });
    const tooBig = await post(nodeA, path(), big, headers(adminKey));
    expect(tooBig.status).toBe(413);
    expect(((await tooBig.json()) as { error: { data: { code: string } } }).error.data.code).toBe(
      "PAYLOAD_TOO_LARGE",
    );
    const noSession = await post(
      nodeA,
      path(),
      '{"jsonrpc":"2.0","id":2,"method":"tools/list"}',
      headers(adminKey),
    );
    expect(noSession.status).toBe(400);
    const badSession = await post(
      nodeA,
      path(),
      '{"jsonrpc":"2.0","id":2,"method":"tools/list"}',
      headers(adminKey, { "mcp-session-id": "nope" }),
    );
    expect(badSession.status).toBe(404);
    expect(((await badSession.json()) as { error: { data: { code: string } } }).error.data.code).toBe(
      "SESSION_NOT_FOUND",
    );
    const random = await post(
      nodeA,
      path(),
      Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 37) % 256)).toString("latin1"),
      headers(adminKey),
    );
    expect(random.status).toBe(400);
    expect((await fetch(`${nodeA.url}/healthz`)).status).toBe(200);
  });

  it("survives well-formed JSON-RPC with garbage params on every method", async () => {
    const hdrs = await rawSession(nodeA, adminKey);
    const methods = [
      "tools/list",
      "tools/call",
      "prompts/list",
      "prompts/get",
      "resources/list",
      "resources/read",
      "resources/templates/list",
      "resources/subscribe",
      "resources/unsubscribe",
      "completion/complete",
      "logging/setLevel",
      "ping",
      "server/discover",
      "initialize",
      "nonsense/method",
    ];
    const values: unknown[] = [
      null,
      0,
      -1,
      Number.MAX_VALUE,
      "",
      "x".repeat(300),
      [],
      [1, "a"],
      {},
      { a: { b: [null] } },
      true,
    ];
    let i = 100;
    for (const method of methods) {
      for (const v of values) {
        const params = {
          name: v,
          uri: v,
          cursor: v,
          arguments: v,
          ref: v,
          level: v,
          _meta: v === null ? undefined : { progressToken: v },
        };
        const res = await post(
          nodeA,
          `/t/${acme.slug}/mcp`,
          JSON.stringify({ jsonrpc: "2.0", id: i++, method, params }),
          hdrs,
        );
        expect(res.status, `${method} ${JSON.stringify(v)}`).toBeLessThan(500);
        const text = await res.text();
        const payload = text.startsWith("{")
          ? text
          : (text
              .split("\n")
              .find((l) => l.startsWith("data:"))
              ?.slice(5) ?? "{}");
        const msg = JSON.parse(payload) as {
          jsonrpc?: string;
          result?: unknown;
          error?: { data?: { code?: string } };
        };
        expect(msg.jsonrpc).toBe("2.0");
        if (msg.error && method !== "nonsense/method") expect(typeof msg.error.data?.code).toBe("string");
      }
    }
    expect((await fetch(`${nodeA.url}/healthz`)).status).toBe(200);
  });

  it("400 for an unsupported MCP-Protocol-Version", async () => {
    const init = await post(nodeA, path(), INIT, headers(adminKey));
    const sid = init.headers.get("mcp-session-id")!;
    const res = await post(
      nodeA,
      path(),
      '{"jsonrpc":"2.0","id":2,"method":"tools/list"}',
      headers(adminKey, { "mcp-session-id": sid, "mcp-protocol-version": "1999-01-01" }),
    );
    expect(res.status).toBe(400);
  });

  it("unknown methods get -32601 in a JSON-RPC response", async () => {
    const { client } = await connect(nodeA, adminKey);
    await expect(
      client.request(
        { method: "nope/nothing", params: {} },
        (await import("@modelcontextprotocol/sdk/types.js")).EmptyResultSchema,
      ),
    ).rejects.toMatchObject({ code: -32601 });
    await client.close();
  });
});

describe("aggregation and policy", () => {
  it("lists every allowed tool of every upstream, prefixed; a down upstream is left out", async () => {
    const { client } = await connect(nodeA, adminKey);
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name).sort();
    expect(names).toContain("alpha_echo");
    expect(names).toContain("alpha_delete_note");
    expect(names).toContain("beta_echo");
    expect(names).toContain("alpha_get_secret");
    // hidden by policy
    expect(names).not.toContain("beta_get_secret");
    expect(names).not.toContain("alpha_drop_table");
    expect(names.some((n) => n.startsWith("down_"))).toBe(false);
    const r = await client.callTool({ name: "beta_echo", arguments: { text: "hi" } });
    expect(r.content).toEqual([{ type: "text", text: "beta:echo:hi" }]);
    // MCP pagination, "Error Handling": an invalid cursor is -32602 (Invalid params).
    await expect(client.listTools({ cursor: "not-a-cursor" })).rejects.toMatchObject({ code: -32602 });
    await client.close();
  });

  it("denied calls get DENIED_BY_POLICY with the rule id; unknown tools TOOL_NOT_FOUND", async () => {
    const { client } = await connect(nodeA, adminKey);
    const err = await client
      .callTool({ name: "alpha_drop_table", arguments: { table: "t" } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(McpError);
    expect((err as McpError).data).toMatchObject({ code: "DENIED_BY_POLICY", ruleId: "no-drop" });
    const nf = await client.callTool({ name: "alpha_nothing", arguments: {} }).catch((e: unknown) => e);
    expect((nf as McpError).data).toMatchObject({ code: "TOOL_NOT_FOUND" });
    await client.close();
    const deny = nodeA.audit.find((e) => e.tool === "drop_table");
    expect(deny).toMatchObject({ decision: "deny", ruleId: "no-drop", outcome: "denied", upstream: "alpha" });
  });

  it("a reader sees only what the policy allows, and is refused the rest", async () => {
    const { client } = await connect(nodeA, readerKey.key);
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toContain("alpha_echo");
    // An admin sees alpha_delete_note (above); no rule lets a reader have it.
    expect(names).not.toContain("alpha_delete_note");
    expect(names).not.toContain("alpha_drop_table");
    const err = await client
      .callTool({ name: "alpha_delete_note", arguments: { id: "n1" } })
      .catch((e: unknown) => e);
    expect((err as McpError).data).toMatchObject({ code: "DENIED_BY_POLICY" });
    await client.close();
  });

  it("calls to a down upstream fail fast with UPSTREAM_UNAVAILABLE", async () => {
    const { client } = await connect(nodeA, adminKey);
    const err = await client.callTool({ name: "down_anything", arguments: {} }).catch((e: unknown) => e);
    expect((err as McpError).data).toMatchObject({ code: "UPSTREAM_UNAVAILABLE", upstream: "down" });
    await client.close();
  });

  // Issue 9: the error said "Upstream down is unavailable; try again later" without the cause,
  // and the audit recorded the allowed call as decision deny with no upstream.
  it("a down upstream's error names the cause; the audit keeps the policy's allow apart from the outcome", async () => {
    const { client } = await connect(nodeA, adminKey);
    const err = await client.callTool({ name: "down_get_thing", arguments: {} }).catch((e: unknown) => e);
    expect((err as McpError).data).toMatchObject({ code: "UPSTREAM_UNAVAILABLE", upstream: "down" });
    expect((err as McpError).message).toContain(`connection refused at 127.0.0.1:${downPort}`);
    await client.close();
    expect(nodeA.audit.find((e) => e.tool === "get_thing")).toMatchObject({
      upstream: "down",
      decision: "allow",
      ruleId: "admins-all",
      outcome: "upstream_unavailable",
    });

    // A caller the policy denies is denied, whether or not the upstream is up.
    const reader = await connect(nodeA, readerKey.key);
    const denied = await reader.client
      .callTool({ name: "down_drop_table", arguments: {} })
      .catch((e: unknown) => e);
    expect((denied as McpError).data).toMatchObject({ code: "DENIED_BY_POLICY", ruleId: "no-drop" });
    await reader.client.close();
    expect(nodeA.audit.find((e) => e.upstream === "down" && e.tool === "drop_table")).toMatchObject({
      decision: "deny",
      ruleId: "no-drop",
      outcome: "denied",
    });
  });

  it("an upstream slower than its timeout gets TIMEOUT, the call is cancelled upstream, and the session goes on", async () => {
    const { client } = await connect(nodeA, adminKey);
    const runs = beta.slowRuns.length;
    const err = await client
      .callTool({ name: "slowpoke_slow", arguments: { steps: 500 } })
      .catch((e: unknown) => e);
    expect((err as McpError).data).toMatchObject({ code: "TIMEOUT" });
    // Order, not speed: the agent had its answer before the upstream got through its 500 steps,
    // and the gateway told the upstream to stop.
    const run = beta.slowRuns[runs];
    expect(run?.finished).toBe(false);
    await waitUntil("the upstream to see the cancellation", () => run?.cancelled === true);
    const r = await client.callTool({ name: "slowpoke_echo", arguments: { text: "still here" } });
    expect(r.content).toEqual([{ type: "text", text: "beta:echo:still here" }]);
    await client.close();
  });

  it("stdio upstreams are refused unless the operator allows them", async () => {
    const { client } = await connect(nodeA, adminKey, `/t/${acme.slug}/mcp/local`);
    const err = await client.listTools().catch((e: unknown) => e);
    expect((err as McpError).data).toMatchObject({ code: "UPSTREAM_UNAVAILABLE" });
    expect((err as McpError).message).toContain("GATEWAY_ALLOW_STDIO");
    await client.close();
  });

  it("prompts prefixed, resources namespaced and readable", async () => {
    const { client } = await connect(nodeA, adminKey);
    const prompts = (await client.listPrompts()).prompts.map((p) => p.name);
    expect(prompts).toEqual(expect.arrayContaining(["alpha_greet", "beta_greet"]));
    const got = await client.getPrompt({ name: "beta_greet", arguments: { who: "Ann" } });
    expect(got.messages[0]?.content).toMatchObject({ text: "Hello Ann from beta" });
    const resources = (await client.listResources()).resources.map((r) => r.uri);
    expect(resources).toEqual(
      expect.arrayContaining(["gatehouse://alpha/alpha://info", "gatehouse://beta/beta://info"]),
    );
    const read = await client.readResource({ uri: "gatehouse://alpha/alpha://info" });
    expect(read.contents[0]).toMatchObject({ uri: "gatehouse://alpha/alpha://info", text: "info of alpha" });
    await client.close();
  });

  it("the single-upstream endpoint serves names unprefixed", async () => {
    const { client } = await connect(nodeA, adminKey, `/t/${acme.slug}/mcp/alpha`);
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toContain("echo");
    expect(names).not.toContain("alpha_echo");
    const r = await client.callTool({ name: "echo", arguments: { text: "x" } });
    expect(r.content).toEqual([{ type: "text", text: "alpha:echo:x" }]);
    const read = await client.readResource({ uri: "alpha://info" });
    expect(read.contents[0]).toMatchObject({ uri: "alpha://info" });
    await client.close();
  });

  it("sends the upstream's static headers, never the agent's credentials", async () => {
    const seenA = alpha.requestHeaders.length;
    const seenB = beta.requestHeaders.length;
    const { client } = await connect(nodeA, adminKey);
    await client.callTool({ name: "alpha_echo", arguments: { text: "h" } });
    await client.callTool({ name: "beta_echo", arguments: { text: "h" } });
    await client.close();
    const toAlpha = alpha.requestHeaders.slice(seenA);
    const toBeta = beta.requestHeaders.slice(seenB);
    expect(toAlpha.length).toBeGreaterThan(0);
    expect(toBeta.length).toBeGreaterThan(0);
    // alpha is configured with a static header; every request to it carries it, beta's none.
    for (const hd of toAlpha) expect(hd["x-upstream-token"]).toBe("alpha-static");
    for (const hd of toBeta) expect(hd["x-upstream-token"]).toBeUndefined();
    for (const hd of [...toAlpha, ...toBeta]) {
      expect(JSON.stringify(hd)).not.toContain(adminKey);
      expect(hd.authorization).toBeUndefined();
      expect(hd["x-api-key"]).toBeUndefined();
    }
  });
});

describe("relay", () => {
  it("relays progress with the agent's own token", async () => {
    const { client } = await connect(nodeA, adminKey);
    const seen: number[] = [];
    const r = await client.callTool({ name: "alpha_slow", arguments: { steps: 3 } }, undefined, {
      onprogress: (p) => seen.push(p.progress),
    });
    expect(r.content).toEqual([{ type: "text", text: "done 3" }]);
    expect(seen).toEqual([1, 2, 3]);
    await client.close();
  });

  it("relays elicitation to the agent and its answer back", async () => {
    const { client } = await connect(nodeA, adminKey, `/t/${acme.slug}/mcp`, {
      onElicit: () => ({ action: "accept", content: { answer: "42" } }),
    });
    const r = await client.callTool({ name: "alpha_ask_user", arguments: { message: "?" } });
    expect(r.content).toEqual([{ type: "text", text: 'accept:{"answer":"42"}' }]);
    await client.close();
  });
  it("an agent's answer that lands on another node reaches the upstream (routed through Redis)", async () => {
    const hdrs = await rawSession(nodeA, adminKey, { elicitation: {} });
    const path = `/t/${acme.slug}/mcp`;
    const call = await post(
      nodeA,
      path,
      JSON.stringify({
        jsonrpc: "2.0",
        id: 7,
        method: "tools/call",
        params: { name: "alpha_ask_user", arguments: { message: "?" } },
      }),
      hdrs,
    );
    const stream = sseMessages(call);
    const ask = await stream.next();
    expect(ask.method).toBe("elicitation/create");
    const answered = await post(
      nodeB,
      path,
      JSON.stringify({ jsonrpc: "2.0", id: ask.id, result: { action: "accept", content: { answer: "B" } } }),
      hdrs,
    );
    expect(answered.status).toBe(202);
    const final = await stream.next();
    expect(final).toMatchObject({
      id: 7,
      result: { content: [{ type: "text", text: 'accept:{"answer":"B"}' }] },
    });
  });

  it("a cancellation that lands on another node stops the call", async () => {
    const hdrs = await rawSession(nodeA, adminKey);
    const path = `/t/${acme.slug}/mcp`;
    const runs = alpha.slowRuns.length;
    const call = await post(
      nodeA,
      path,
      JSON.stringify({
        jsonrpc: "2.0",
        id: 8,
        method: "tools/call",
        params: { name: "alpha_slow", arguments: { steps: 200 }, _meta: { progressToken: "p8" } },
      }),
      hdrs,
    );
    const stream = sseMessages(call);
    expect(await stream.next()).toMatchObject({
      method: "notifications/progress",
      params: { progressToken: "p8" },
    });
    const cancelled = await post(
      nodeB,
      path,
      JSON.stringify({
        jsonrpc: "2.0",
        method: "notifications/cancelled",
        params: { requestId: 8, reason: "changed my mind" },
      }),
      hdrs,
    );
    expect(cancelled.status).toBe(202);
    let last: Record<string, unknown>;
    do last = await stream.next();
    while (last.id !== 8);
    // Not the upstream's "done 200": the call was stopped, and the upstream was told to stop
    // before it got through its steps (order, not speed).
    expect(JSON.stringify(last)).not.toContain("done 200");
    const run = alpha.slowRuns[runs];
    await waitUntil("the upstream to see the cancellation", () => run?.cancelled === true);
    expect(run?.finished).toBe(false);
  });
});

describe("sessions across nodes", () => {
  it("another principal presenting a session id gets 404", async () => {
    const { client, transport } = await connect(nodeA, adminKey);
    const sid = transport.sessionId!;
    const res = await post(
      nodeA,
      `/t/${acme.slug}/mcp`,
      '{"jsonrpc":"2.0","id":5,"method":"tools/list"}',
      headers(readerKey.key, { "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25" }),
    );
    expect(res.status).toBe(404);
    await client.close();
  });

  it("a second node resumes the session without initialize, on the same upstream session", async () => {
    const { client, transport } = await connect(nodeA, adminKey);
    await client.callTool({ name: "alpha_echo", arguments: { text: "one" } });
    const sid = transport.sessionId!;
    const upstreamSession = alpha.echoSessions.at(-1);
    expect(upstreamSession).toBeTruthy();
    // Same session id, other node, no initialize.
    const t2 = new StreamableHTTPClientTransport(new URL(`${nodeB.url}/t/${acme.slug}/mcp`), {
      requestInit: { headers: headers(adminKey) },
      sessionId: sid,
    });
    const c2 = new Client({ name: "test-agent", version: "1.0.0" });
    await c2.connect(t2);
    const r = await c2.callTool({ name: "alpha_echo", arguments: { text: "two" } });
    expect(r.content).toEqual([{ type: "text", text: "alpha:echo:two" }]);
    // nodeB went on with the upstream session nodeA opened for this agent session
    expect(alpha.echoSessions.at(-1)).toBe(upstreamSession);
    await c2.close();
    await client.close();
  });

  it("when the upstream forgets its session (restart), the next call opens a new one transparently", async () => {
    const { client } = await connect(nodeA, adminKey);
    await client.callTool({ name: "beta_echo", arguments: { text: "before" } });
    beta.forgetSessions();
    const r = await client.callTool({ name: "beta_echo", arguments: { text: "after" } });
    expect(r.content).toEqual([{ type: "text", text: "beta:echo:after" }]);
    // the node's catalog connection reconnects too
    beta.addTool("after_restart");
    const { client: fresh } = await connect(nodeB, adminKey);
    await waitUntil("beta_after_restart in the catalog", async () =>
      (await fresh.listTools()).tools.some((t) => t.name === "beta_after_restart"),
    );
    await fresh.close();
    await client.close();
  });

  it("DELETE ends the session everywhere", async () => {
    const { client, transport } = await connect(nodeA, adminKey);
    const sid = transport.sessionId!;
    await transport.terminateSession();
    const res = await post(
      nodeB,
      `/t/${acme.slug}/mcp`,
      '{"jsonrpc":"2.0","id":5,"method":"tools/list"}',
      headers(adminKey, { "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25" }),
    );
    expect(res.status).toBe(404);
    await client.close();
  });
});

describe("hot config", () => {
  // The bus event is the trigger; how fast it spreads is measured in test/bench (propagation).
  // Here: once a node has applied the version a write produced, the write is in force there.
  const applied = (n: Node, version: number) =>
    waitUntil(`version ${version} applied`, () => (n.gateway.tenants.peek(acme.id)?.version ?? 0) >= version);

  it("a revoked key is refused on every node once the node applied the bumped version", async () => {
    const k = await seedKey(db, acme.id, { roles: ["admin"] });
    let v = await h.bump(acme.id);
    for (const n of [nodeA, nodeB]) {
      await applied(n, v);
      expect((await post(n, `/t/${acme.slug}/mcp`, INIT, headers(k.key))).status).toBe(200);
    }
    await db.prisma.apiKey.delete({ where: { id: k.id } });
    v = await h.bump(acme.id);
    for (const n of [nodeA, nodeB]) {
      await applied(n, v);
      expect((await post(n, `/t/${acme.slug}/mcp`, INIT, headers(k.key))).status).toBe(401);
    }
  });

  it("a policy change is in force on every node once applied, for sessions already open", async () => {
    const { client } = await connect(nodeB, readerKey.key);
    expect((await client.callTool({ name: "alpha_echo", arguments: { text: "a" } })).content).toBeDefined();
    await db.prisma.policy.create({
      data: {
        tenantId: acme.id,
        version: 2,
        document: {
          ...POLICY,
          rules: [
            ...POLICY.rules,
            { id: "no-echo", effect: "deny", principals: ["role:reader"], tools: ["echo"] },
          ],
        },
      },
    });
    const v = await h.bump(acme.id);
    for (const n of [nodeA, nodeB]) await applied(n, v);
    const err = await client
      .callTool({ name: "alpha_echo", arguments: { text: "a" } })
      .catch((e: unknown) => e);
    expect((err as McpError).data).toMatchObject({ code: "DENIED_BY_POLICY", ruleId: "no-echo" });
    expect((await client.listTools()).tools.map((t) => t.name)).not.toContain("alpha_echo");
    await client.close();
    const { client: onA } = await connect(nodeA, readerKey.key);
    const errA = await onA
      .callTool({ name: "alpha_echo", arguments: { text: "a" } })
      .catch((e: unknown) => e);
    expect((errA as McpError).data).toMatchObject({ code: "DENIED_BY_POLICY", ruleId: "no-echo" });
    await onA.close();
  });
});

describe("tenants are isolated", () => {
  it("a tenant without upstreams lists nothing, even for an admin key", async () => {
    const { client } = await connect(nodeA, otherKey, `/t/${other.slug}/mcp`);
    expect((await client.listTools()).tools).toEqual([]);
    await client.close();
  });
});
