// Upstream OAuth on a gateway node (issue 5): which credential each caller's upstream connection
// carries. Real Postgres and Redis (credential rows and bus events exactly as the workers write
// and announce them), a real MCP upstream over Streamable HTTP that records the bearer token of
// every request per upstream session, and the SDK clients as agents (both protocol eras). The
// token machinery itself (worker refreshes, a real authorization server, 401 → one refresh) is
// covered end to end in test/e2e/gateway-oauth.test.ts.
import { randomUUID } from "node:crypto";
import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { BusChannel, type CredentialEvent } from "@gatehouse/shared";
import { openConnectTicket } from "@gatehouse/shared/node";
import {
  Client as ModernClient,
  StreamableHTTPClientTransport as ModernTransport,
} from "@modelcontextprotocol/client";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import {
  CallToolRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ToolListChangedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHarness, type Harness, type Node, sealer, seedKey } from "./harness.js";

type Json = Record<string, unknown>;

/**
 * An upstream that takes any bearer token (none: 401) and answers `whoami` with it. Its tool list
 * can grow without a list_changed notification, as an upstream redeployed with new tools would.
 */
interface BearerUpstream {
  url: string;
  /** Bearer tokens seen, per upstream session id. */
  tokensBySession: Map<string, Set<string>>;
  extraTools: string[];
  close(): Promise<void>;
}

async function startBearerUpstream(): Promise<BearerUpstream> {
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const tokensBySession = new Map<string, Set<string>>();
  const extraTools: string[] = [];
  const build = (): Server => {
    const server = new Server({ name: "bearer-upstream", version: "1.0.0" }, { capabilities: { tools: {} } });
    server.setRequestHandler(ListToolsRequestSchema, async () => ({
      tools: ["whoami", ...extraTools].map((name) => ({ name, inputSchema: { type: "object" as const } })),
    }));
    server.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
      const token = String(extra.requestInfo?.headers.authorization ?? "").replace(/^Bearer /, "");
      return {
        content: [{ type: "text", text: token }],
        structuredContent: { token, session: extra.sessionId ?? "", tool: req.params.name },
      };
    });
    return server;
  };
  const http: HttpServer = createServer(async (req, res) => {
    const auth = req.headers.authorization ?? "";
    if (!auth.startsWith("Bearer ")) {
      res.writeHead(401, { "www-authenticate": "Bearer" }).end();
      return;
    }
    const sid = req.headers["mcp-session-id"];
    let transport = typeof sid === "string" ? transports.get(sid) : undefined;
    if (!transport) {
      if (typeof sid === "string") {
        res.writeHead(404).end();
        return;
      }
      const t = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => {
          transports.set(id, t);
        },
      });
      await build().connect(t);
      transport = t;
    }
    const session = typeof sid === "string" ? sid : "(initialize)";
    const seen = tokensBySession.get(session) ?? new Set<string>();
    tokensBySession.set(session, seen);
    seen.add(auth.slice(7));
    await transport.handleRequest(req, res);
  });
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`,
    tokensBySession,
    extraTools,
    async close() {
      http.closeAllConnections();
      await new Promise((r) => http.close(r));
    },
  };
}

let h: Harness;
let node: Node;
let up: BearerUpstream;
let tenant: { id: string; slug: string };
const upstreamIds: Record<string, string> = {};
const keys: Record<string, { id: string; key: string }> = {};
const clients: Array<{ close(): Promise<void> }> = [];

async function agent(who: string): Promise<Client> {
  const client = new Client({ name: `agent-${who}`, version: "1.0.0" });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${node.url}/t/${tenant.slug}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${keys[who]!.key}` } },
    }),
  );
  clients.push(client);
  return client;
}

async function modernAgent(who: string): Promise<ModernClient> {
  const client = new ModernClient(
    { name: `modern-${who}`, version: "1.0.0" },
    { versionNegotiation: { mode: { pin: "2026-07-28" } } },
  );
  await client.connect(
    new ModernTransport(new URL(`${node.url}/t/${tenant.slug}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${keys[who]!.key}` } },
    }),
  );
  clients.push(client);
  return client;
}

async function whoami(
  client: Client | ModernClient,
  tool = "mine_whoami",
): Promise<{ token: string; session: string }> {
  const result = (await client.callTool({ name: tool, arguments: {} })) as { structuredContent?: unknown };
  return result.structuredContent as { token: string; session: string };
}

async function callError(
  client: Client,
  tool: string,
): Promise<{ code: number; message: string; data: Json }> {
  try {
    await client.callTool({ name: tool, arguments: {} });
  } catch (err) {
    if (err instanceof McpError)
      return { code: err.code, message: err.message, data: (err.data ?? {}) as Json };
    throw err;
  }
  throw new Error(`${tool} succeeded; an error was expected`);
}

async function seedCredential(
  upstream: string,
  subject: string,
  data: { token?: string; status?: "active" | "needs_reconnect"; lastRefreshError?: string } = {},
) {
  return await h.db.prisma.upstreamCredential.create({
    data: {
      tenantId: tenant.id,
      upstreamId: upstreamIds[upstream]!,
      subject,
      accessTokenSealed: data.token ? sealer.seal(data.token) : null,
      refreshTokenSealed: sealer.seal("refresh"),
      expiresAt: new Date(Date.now() + 3600_000),
      status: data.status ?? "active",
      lastRefreshError: data.lastRefreshError ?? null,
      generation: 1,
    },
  });
}

beforeAll(async () => {
  h = await createHarness();
  up = await startBearerUpstream();
  const t = await h.db.prisma.tenant.create({
    data: { slug: `oauth-${Date.now().toString(36)}`, name: "OAuth", settings: { anonymousAccess: true } },
  });
  tenant = { id: t.id, slug: t.slug };
  await h.db.prisma.policy.create({
    data: {
      tenantId: tenant.id,
      version: 1,
      document: { defaultEffect: "deny", rules: [{ id: "all", effect: "allow", principals: ["*"] }] },
    },
  });
  const upstream = async (name: string, authMode: string, authConfig: Json, authSecret?: string) => {
    const row = await h.db.prisma.upstream.create({
      data: {
        tenantId: tenant.id,
        name,
        url: up.url,
        transport: "streamable_http",
        toolPrefix: `${name}_`,
        authMode,
        authConfig: authConfig as never,
        authSecretSealed: authSecret ? sealer.seal(authSecret) : null,
      },
    });
    upstreamIds[name] = row.id;
  };
  await upstream("shared", "oauth-client-credentials", {});
  await upstream("mine", "oauth-authorization-code", { perUser: true });
  await upstream("plain", "bearer", {}, "tok-static");
  for (const who of ["alice", "bob", "carol", "dave"])
    keys[who] = await seedKey(h.db, tenant.id, { agent: who });
  await seedCredential("shared", "", { token: "tok-shared" });
  await seedCredential("mine", `key:${keys.alice!.id}`, { token: "tok-alice" });
  await seedCredential("mine", `key:${keys.bob!.id}`, { token: "tok-bob" });
  await seedCredential("mine", `key:${keys.dave!.id}`, {
    token: "tok-dave-old",
    status: "needs_reconnect",
    lastRefreshError: "invalid_grant: grant request is invalid",
  });
  node = await h.startNode();
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
  await h?.close();
  await up?.close();
});

describe("upstream OAuth on a gateway node", () => {
  it("gives each principal's connection its own token on a per-user upstream, and the shared one elsewhere", async () => {
    const alice = await agent("alice");
    const bob = await agent("bob");
    const seen: string[] = [];
    for (let i = 0; i < 3; i++) {
      seen.push((await whoami(alice)).token, (await whoami(bob)).token);
      seen.push((await whoami(alice, "shared_whoami")).token);
    }
    expect(seen).toEqual(Array(3).fill(["tok-alice", "tok-bob", "tok-shared"]).flat());
    // No upstream session ever carried two callers' tokens (catalog connections included).
    for (const [session, tokens] of up.tokensBySession) {
      if (session !== "(initialize)") expect([...tokens], session).toHaveLength(1);
    }
    expect((await alice.listTools()).tools.map((t) => t.name)).toEqual(
      expect.arrayContaining(["mine_whoami", "shared_whoami", "plain_whoami"]),
    );
  });

  it("does the same for 2026-07-28 callers, which have no session of their own", async () => {
    const alice = await modernAgent("alice");
    const bob = await modernAgent("bob");
    expect([(await whoami(alice)).token, (await whoami(bob)).token, (await whoami(alice)).token]).toEqual([
      "tok-alice",
      "tok-bob",
      "tok-alice",
    ]);
  });

  it("answers an unconnected principal with UPSTREAM_AUTH_REQUIRED and a link bound to it", async () => {
    const carol = await agent("carol");
    const error = await callError(carol, "mine_whoami");
    expect(error.code).toBe(-32012);
    expect(error.data).toMatchObject({ code: "UPSTREAM_AUTH_REQUIRED", upstream: "mine" });
    const link = new URL(String(error.data.connectUrl));
    expect(`${link.origin}${link.pathname}`).toBe(`${node.gateway.config.publicApiUrl}/v1/oauth/connect`);
    expect(error.message).toContain(link.toString());
    expect(openConnectTicket(sealer, link.searchParams.get("ticket")!)).toMatchObject({
      tenantId: tenant.id,
      upstreamId: upstreamIds.mine,
      subject: `key:${keys.carol!.id}`,
    });
    // The upstream stays out of Carol's list; the others are there, and her shared calls work.
    const names = (await carol.listTools()).tools.map((t) => t.name);
    expect(names).not.toContain("mine_whoami");
    expect(names).toContain("shared_whoami");
    expect((await whoami(carol, "shared_whoami")).token).toBe("tok-shared");
    // Another principal's failure does not mark the upstream down for everyone.
    expect((await whoami(await agent("alice"))).token).toBe("tok-alice");

    // Carol connects (the API stores her tokens and announces them): her next call works at once,
    // in the same session, though the refusal is remembered for a while to spare the database.
    expect((await callError(carol, "mine_whoami")).data.code).toBe("UPSTREAM_AUTH_REQUIRED");
    const row = await seedCredential("mine", `key:${keys.carol!.id}`, { token: "tok-carol" });
    // Until the announcement, the remembered answer stands (no database read per call).
    expect((await callError(carol, "mine_whoami")).data.code).toBe("UPSTREAM_AUTH_REQUIRED");
    await h.publisher.publish(BusChannel.credentials, {
      type: "updated",
      tenantId: tenant.id,
      upstreamId: row.upstreamId,
      subject: row.subject,
      credentialId: row.id,
      generation: row.generation,
      expiresAt: row.expiresAt?.toISOString() ?? null,
    } satisfies CredentialEvent);
    let token = "";
    for (let i = 0; i < 40 && !token; i++) {
      token = await whoami(carol).then(
        (r) => r.token,
        () => "",
      );
      if (!token) await new Promise((r) => setTimeout(r, 50));
    }
    expect(token).toBe("tok-carol");
  });

  it("tells a principal whose grant was revoked to reconnect, with the reason", async () => {
    const dave = await agent("dave");
    const error = await callError(dave, "mine_whoami");
    expect(error.data.code).toBe("UPSTREAM_AUTH_REQUIRED");
    expect(error.message).toMatch(/invalid_grant/);
    expect(error.message).toContain(String(error.data.connectUrl));
  });

  it("refuses anonymous callers on a per-user upstream", async () => {
    const anon = new Client({ name: "anon", version: "1.0.0" });
    await anon.connect(new StreamableHTTPClientTransport(new URL(`${node.url}/t/${tenant.slug}/mcp`)));
    clients.push(anon);
    const error = await callError(anon, "mine_whoami");
    expect(error.data.code).toBe("UPSTREAM_AUTH_REQUIRED");
    expect(error.message).toMatch(/anonymous/);
    expect((await whoami(anon, "shared_whoami")).token).toBe("tok-shared");
  });

  it("uses a refreshed token at once, in the same upstream session", async () => {
    const alice = await agent("alice");
    const before = await whoami(alice);
    expect(before.token).toBe("tok-alice");
    const row = await h.db.prisma.upstreamCredential.update({
      where: { upstreamId_subject: { upstreamId: upstreamIds.mine!, subject: `key:${keys.alice!.id}` } },
      data: { accessTokenSealed: sealer.seal("tok-alice-2"), generation: { increment: 1 } },
    });
    const event: CredentialEvent = {
      type: "updated",
      tenantId: tenant.id,
      upstreamId: row.upstreamId,
      subject: row.subject,
      credentialId: row.id,
      generation: row.generation,
      expiresAt: row.expiresAt?.toISOString() ?? null,
    };
    await h.publisher.publish(BusChannel.credentials, event);
    let after = before;
    for (let i = 0; i < 40 && after.token === before.token; i++) {
      await new Promise((r) => setTimeout(r, 50));
      after = await whoami(alice);
    }
    expect(after.token).toBe("tok-alice-2");
    expect(after.session).toBe(before.session);
    // Bob's token is untouched.
    expect((await whoami(await agent("bob"))).token).toBe("tok-bob");
  });

  it("refetches a catalog the workers' discovery found changed, and tells the sessions that see it", async () => {
    const alice = await agent("alice");
    let changed = 0;
    alice.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      changed++;
    });
    expect((await alice.listTools()).tools.map((t) => t.name)).not.toContain("plain_added");
    // Give the client's GET stream a moment to open (list_changed travels on it).
    await new Promise((r) => setTimeout(r, 300));
    // The upstream got a new tool without announcing it; discovery stored it and bumped the version.
    up.extraTools.push("added");
    await h.db.prisma.upstream.update({
      where: { id: upstreamIds.plain! },
      data: { tools: [{ name: "whoami" }, { name: "added" }], toolsDiscoveredAt: new Date() },
    });
    await h.bump(tenant.id);
    const deadline = Date.now() + 5000;
    while (changed === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(changed).toBe(1);
    expect((await alice.listTools()).tools.map((t) => t.name)).toContain("plain_added");
  });
});
