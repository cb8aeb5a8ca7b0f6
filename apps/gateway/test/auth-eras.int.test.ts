// JWT auth against a real authorization server (oidc-provider: discovery, JWKS, RFC 8707
// audience-bound JWT access tokens), anonymous opt-in, 2026-07-28 clients and upstreams,
// list_changed relay, the rate-limit seam, and stdio upstreams (server-everything) when allowed.
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import {
  Client as ClientV2,
  StreamableHTTPClientTransport as TransportV2,
} from "@modelcontextprotocol/client";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpError, ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type AuthServer,
  CC_CLIENT,
  RESOURCE_SCOPE,
  startAuthServer,
} from "../../../test/fixtures/oauth/auth-server.mjs";
import { type Fixture, startFixture } from "./fixtures.js";
import { createHarness, type Harness, type Node, seedKey } from "./harness.js";

const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));

let h: Harness;
let node: Node;
let stdioNode: Node;
let limited: Node;
let fx: Fixture;
let modern: { url: string; proc: ChildProcess } | null = null;
let as: AuthServer;
let stranger: AuthServer;
let issuer: string;
/** A client the policy gives no role; one whose tokens live one second. */
const SALES = { id: "sales-client", secret: "sales-secret" };
const SHORT = { id: "short-client", secret: "short-secret" };
let tenant: { id: string; slug: string };
let anon: { id: string; slug: string };
let key: string;

async function startModernUpstream(): Promise<{ url: string; proc: ChildProcess }> {
  const proc = spawn(
    process.execPath,
    [`${repoRoot}test/fixtures/modern-server.mjs`, "--port", "0", "--name", "modern"],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  const port = await new Promise<number>((resolve, reject) => {
    let buf = "";
    proc.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      const m = /LISTENING (\d+)/.exec(buf);
      if (m) resolve(Number(m[1]));
    });
    proc.once("exit", () => reject(new Error("modern fixture exited")));
    setTimeout(() => reject(new Error("modern fixture did not start")), 15_000);
  });
  return { url: `http://127.0.0.1:${port}/mcp`, proc };
}

/** A client-credentials access token (RFC 8707 `resource` → `aud`) from the authorization server. */
async function token(
  opts: { client?: { id: string; secret: string }; resource?: string; server?: AuthServer } = {},
): Promise<string> {
  const server = opts.server ?? as;
  const client = opts.client ?? CC_CLIENT;
  const res = await fetch(`${server.issuer}/token`, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      authorization: `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString("base64")}`,
    },
    body: new URLSearchParams({
      grant_type: "client_credentials",
      resource: opts.resource ?? `http://localhost:8080/t/${tenant.slug}/mcp`,
      scope: RESOURCE_SCOPE,
    }),
  });
  const body = (await res.json()) as { access_token?: string };
  if (!res.ok || !body.access_token)
    throw new Error(`token request: HTTP ${res.status} ${JSON.stringify(body)}`);
  return body.access_token;
}

/** initialize with `token`: "200", or the status and the RFC 6750 error. */
async function initialize(t: string): Promise<string> {
  const res = await fetch(`${node.url}/t/${tenant.slug}/mcp`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${t}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "x", version: "1" } },
    }),
  });
  await res.body?.cancel();
  const session = res.headers.get("mcp-session-id");
  if (session) {
    // End it at once: these probes must not pile up against the per-principal session cap.
    await fetch(`${node.url}/t/${tenant.slug}/mcp`, {
      method: "DELETE",
      headers: {
        authorization: `Bearer ${t}`,
        "mcp-session-id": session,
        "mcp-protocol-version": "2025-11-25",
      },
    });
  }
  if (res.status === 200) return "200";
  const challenge = res.headers.get("www-authenticate") ?? "";
  // With an identity provider OAuth sign-in is the way, so no "send an API key" error_description.
  return `${res.status}${challenge.includes('error="invalid_token"') ? " invalid_token" : ""}${challenge.includes("error_description") ? " +description" : ""}`;
}

async function v1(url: string, hdrs: Record<string, string>) {
  const client = new Client({ name: "v1-agent", version: "1" });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: hdrs } }));
  return client;
}

beforeAll(async () => {
  h = await createHarness();
  fx = await startFixture("fx");
  [as, stranger] = await Promise.all([
    startAuthServer({
      accessTokenTtl: 300,
      extraClients: [SALES, SHORT],
      accessTokenTtlFor: (id) => (id === SHORT.id ? 1 : undefined),
    }),
    startAuthServer({ accessTokenTtl: 300 }),
  ]);
  issuer = as.issuer;
  try {
    modern = await startModernUpstream();
  } catch {
    modern = null;
  }
  const t = await h.db.prisma.tenant.create({
    data: { slug: `jwt-${Date.now().toString(36)}`, name: "JWT" },
  });
  tenant = { id: t.id, slug: t.slug };
  await h.db.prisma.upstream.create({
    data: { tenantId: t.id, name: "fx", url: fx.url, transport: "streamable_http", toolPrefix: "fx_" },
  });
  if (modern) {
    await h.db.prisma.upstream.create({
      data: {
        tenantId: t.id,
        name: "modern",
        url: modern.url,
        transport: "streamable_http",
        toolPrefix: "m_",
      },
    });
  }
  await h.db.prisma.upstream.create({
    data: {
      tenantId: t.id,
      name: "everything",
      transport: "stdio",
      command: process.execPath,
      args: [`${repoRoot}node_modules/@modelcontextprotocol/server-everything/dist/index.js`, "stdio"],
      toolPrefix: "ev_",
      enabled: true,
    },
  });
  // discovered JWKS (no jwksUri), roles from a claim mapping (client_credentials tokens carry client_id)
  await h.db.prisma.identityProvider.create({
    data: {
      tenantId: t.id,
      name: "local",
      issuer,
      audiences: [],
      claimMappings: [
        { claim: "client_id", value: CC_CLIENT.id, role: "engineer" },
        { claim: "client_id", value: SHORT.id, role: "engineer" },
      ],
    },
  });
  await h.db.prisma.policy.create({
    data: {
      tenantId: t.id,
      version: 1,
      document: {
        defaultEffect: "deny",
        rules: [
          { id: "eng", effect: "allow", principals: ["role:engineer", "role:admin"] },
          { id: "anon-echo", effect: "allow", principals: ["anonymous"], upstreams: ["fx"], tools: ["echo"] },
        ],
      },
    },
  });
  key = (await seedKey(h.db, t.id, { roles: ["admin"], rateLimitPerMinute: 2 })).key;
  const a = await h.db.prisma.tenant.create({
    data: { slug: `anon-${Date.now().toString(36)}`, name: "Anon", settings: { anonymousAccess: true } },
  });
  anon = { id: a.id, slug: a.slug };
  await h.db.prisma.upstream.create({
    data: { tenantId: a.id, name: "fx", url: fx.url, transport: "streamable_http", toolPrefix: "fx_" },
  });
  await h.db.prisma.policy.create({
    data: {
      tenantId: a.id,
      version: 1,
      document: {
        defaultEffect: "deny",
        rules: [{ id: "anon-echo", effect: "allow", principals: ["anonymous"], tools: ["echo"] }],
      },
    },
  });
  node = await h.startNode();
  // Spawning server-everything takes seconds on a loaded machine: the harness's 1.5 s connect bound
  // would make this a test of the machine's speed.
  stdioNode = await h.startNode({ allowStdio: true, config: { upstreamConnectTimeoutMs: 15_000 } });
  // A token bucket stand-in: allows `perMinute` takes per key, then refuses.
  const counts = new Map<string, number>();
  limited = await h.startNode({
    rateLimiter: {
      take: async (k, perMinute) => {
        const n = (counts.get(k) ?? 0) + 1;
        counts.set(k, n);
        return n <= perMinute ? { ok: true, retryAfterMs: 0 } : { ok: false, retryAfterMs: 30_000 };
      },
    },
  });
}, 90_000);

afterAll(async () => {
  await h?.close();
  await fx?.close();
  modern?.proc.kill();
  await as?.close();
  await stranger?.close();
});

describe("JWT from the tenant's identity provider", () => {
  it("accepts a valid token (JWKS discovered from the issuer) and maps roles from claims", async () => {
    const client = await v1(`${node.url}/t/${tenant.slug}/mcp`, {
      authorization: `Bearer ${await token()}`,
    });
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toContain("fx_echo");
    await client.close();
  });

  it("a token without the mapped role sees nothing", async () => {
    const client = await v1(`${node.url}/t/${tenant.slug}/mcp`, {
      authorization: `Bearer ${await token({ client: SALES })}`,
    });
    expect((await client.listTools()).tools).toEqual([]);
    await client.close();
  });

  it("rejects a wrong audience, a foreign issuer and garbage with 401 invalid_token", async () => {
    const bad = [
      await token({ resource: "http://localhost:8080/t/someone-else/mcp" }),
      await token({ server: stranger }),
      "a.b.c",
    ];
    for (const t of bad) expect(await initialize(t)).toBe("401 invalid_token");
  });

  it("accepts a token until it expires, then refuses it", async () => {
    // One-second tokens (plus the gateway's 5 s clock tolerance): waited out, not timed.
    const short = await token({ client: SHORT });
    expect(await initialize(short)).toBe("200");
    const deadline = Date.now() + 30_000;
    let status = "200";
    while (status === "200" && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      status = await initialize(short);
    }
    expect(status).toBe("401 invalid_token");
  }, 40_000);

  it("lists the identity provider in the protected resource metadata", async () => {
    const res = await fetch(`${node.url}/.well-known/oauth-protected-resource/t/${tenant.slug}/mcp`);
    expect(((await res.json()) as { authorization_servers: string[] }).authorization_servers).toEqual([
      issuer,
    ]);
  });
});

describe("anonymous access", () => {
  it("is off by default", async () => {
    const res = await fetch(`${node.url}/t/${tenant.slug}/mcp`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(res.status).toBe(401);
  });

  it("when the tenant opts in, the anonymous principal gets what policy gives it", async () => {
    const client = await v1(`${node.url}/t/${anon.slug}/mcp`, {});
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(["fx_echo"]);
    const r = await client.callTool({ name: "fx_echo", arguments: { text: "anon" } });
    expect(r.content).toEqual([{ type: "text", text: "fx:echo:anon" }]);
    await client.close();
  });
});

describe("revision 2026-07-28", () => {
  it("serves a stateless client (server/discover, per-request _meta)", async () => {
    const client = new ClientV2(
      { name: "modern-agent", version: "1" },
      { versionNegotiation: { mode: { pin: "2026-07-28" } } },
    );
    const transport = new TransportV2(new URL(`${node.url}/t/${tenant.slug}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${key}` } },
    });
    await client.connect(transport);
    expect(client.getProtocolEra()).toBe("modern");
    const tools = (await client.listTools()).tools.map((t) => t.name);
    expect(tools).toContain("fx_echo");
    const r = await client.callTool({ name: "fx_echo", arguments: { text: "new" } });
    expect(r.content).toEqual([{ type: "text", text: "fx:echo:new" }]);
    await client.close();
  });

  it("rejects a header that does not match the body", async () => {
    const res = await fetch(`${node.url}/t/${tenant.slug}/mcp`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${key}`,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "tools/call",
      },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "tools/list",
        params: {
          _meta: {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
          },
        },
      }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: number } }).error.code).toBe(-32020);
  });

  it("a 2026-only upstream works behind a 2025 client", async () => {
    if (!modern) return expect.fail("modern fixture did not start");
    const client = await v1(`${node.url}/t/${tenant.slug}/mcp`, { authorization: `Bearer ${key}` });
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(["m_echo", "m_add"]));
    const r = await client.callTool({ name: "m_add", arguments: { a: 2, b: 3 } });
    expect(r.content).toEqual([{ type: "text", text: "5" }]);
    await client.close();
  });
});

describe("list_changed relay", () => {
  it("tells a session when its visible tools change upstream", async () => {
    const client = await v1(`${node.url}/t/${tenant.slug}/mcp/fx`, { authorization: `Bearer ${key}` });
    const changed = new Promise<void>((resolve) =>
      client.setNotificationHandler(ToolListChangedNotificationSchema, async () => resolve()),
    );
    await client.listTools();
    // let the GET stream open
    await new Promise((r) => setTimeout(r, 200));
    fx.addTool("brand_new");
    await Promise.race([
      changed,
      new Promise((_, rej) => setTimeout(() => rej(new Error("no list_changed")), 5000)),
    ]);
    expect((await client.listTools()).tools.map((t) => t.name)).toContain("brand_new");
    await client.close();
  });
});

describe("list_changed for 2026-07-28 callers (subscriptions/listen)", () => {
  it("delivers tools list_changed on the listen stream", async () => {
    let changed: () => void = () => {};
    const seen = new Promise<void>((r) => {
      changed = r;
    });
    const client = new ClientV2(
      { name: "modern-listener", version: "1" },
      {
        versionNegotiation: { mode: { pin: "2026-07-28" } },
        listChanged: { tools: { autoRefresh: false, onChanged: () => changed() } },
      },
    );
    await client.connect(
      new TransportV2(new URL(`${node.url}/t/${tenant.slug}/mcp/fx`), {
        requestInit: { headers: { authorization: `Bearer ${key}` } },
      }),
    );
    await client.listTools();
    await new Promise((r) => setTimeout(r, 200));
    fx.addTool("newer_tool");
    await Promise.race([
      seen,
      new Promise((_, rej) => setTimeout(() => rej(new Error("no list_changed")), 5000)),
    ]);
    await client.close();
  });
});

describe("rate limits (seam)", () => {
  it("RATE_LIMITED with retryAfterMs once the key's bucket is empty", async () => {
    const client = await v1(`${limited.url}/t/${tenant.slug}/mcp`, { authorization: `Bearer ${key}` });
    await client.callTool({ name: "fx_echo", arguments: { text: "1" } });
    await client.callTool({ name: "fx_echo", arguments: { text: "2" } });
    const err = await client.callTool({ name: "fx_echo", arguments: { text: "3" } }).catch((e: unknown) => e);
    expect((err as McpError).data).toMatchObject({ code: "RATE_LIMITED", retryAfterMs: 30_000 });
    expect(limited.audit.at(-1)).toMatchObject({ outcome: "rate_limited", tool: "echo", upstream: "fx" });
    await client.close();
  });
});

describe("stdio upstreams when allowed", () => {
  it("runs server-everything over stdio and relays its tools", async () => {
    const client = await v1(`${stdioNode.url}/t/${tenant.slug}/mcp/everything`, {
      authorization: `Bearer ${key}`,
    });
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toContain("echo");
    const r = await client.callTool({ name: "echo", arguments: { message: "stdio" } });
    expect(JSON.stringify(r.content)).toContain("stdio");
    await client.close();
  }, 30_000);
});
