// Upstream OAuth through the gateway, with real processes: the API and a gateway node
// (`dist/main.js`), a worker (`apps/api/dist/worker.js`, what `npm run start:worker` runs) on
// Postgres, Redis and BullMQ; oidc-provider as the authorization server with 3-second tokens; MCP
// upstreams that accept only its valid tokens (`whoami` answers the token's subject). Agents are
// the SDK client with API keys; accounts are connected by following the gateway's own
// "connect your account" link and driving the consent with HTTP.
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createDb, type Db } from "@gatehouse/db";
import { BusChannel, type CredentialEvent } from "@gatehouse/shared";
import { createSealer, RedisBus } from "@gatehouse/shared/node";
import { McpError } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AuthServer, CC_CLIENT, startAuthServer, WEB_CLIENT } from "../fixtures/oauth/auth-server.mjs";
import { consent } from "../fixtures/oauth/consent.mjs";
import { type ProtectedUpstream, startProtectedUpstream } from "../fixtures/oauth/protected-upstream.mjs";
import { ALLOW_ALL } from "../support/admin-client.js";
import { type Agent, connectAgent } from "../support/agent.js";
import { printLogsOnFailure } from "../support/hooks.js";
import { freePort, ManagedProcess, repoRoot, sleep, waitFor, waitForHttpOk } from "../support/processes.js";
import { REDIS_URL, Stack } from "../support/stack.js";

printLogsOnFailure();

type Json = Record<string, unknown>;

/** In front of an upstream: passes everything through, except that it answers 401 to the next `armed` tools/call POSTs. */
interface Flaky401Proxy {
  url: string;
  armed: number;
  /** tools/call POSTs seen, with the status each got from us (401) or the upstream. */
  toolCalls: number[];
  close(): Promise<void>;
}

async function startFlaky401Proxy(target: string): Promise<Flaky401Proxy> {
  const to = new URL(target);
  const proxy: Flaky401Proxy = { url: "", armed: 0, toolCalls: [], close: async () => {} };
  const server: Server = createServer(async (req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    let method = "";
    try {
      method = String((JSON.parse(body.toString("utf8") || "{}") as Json).method ?? "");
    } catch {}
    if (req.method === "POST" && method === "tools/call" && proxy.armed > 0) {
      proxy.armed -= 1;
      proxy.toolCalls.push(401);
      res.writeHead(401, {
        "www-authenticate": 'Bearer error="invalid_token", error_description="forced by the test"',
        "content-type": "application/json",
      });
      res.end(JSON.stringify({ error: "invalid_token" }));
      return;
    }
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers)) {
      if (typeof v === "string" && !["host", "content-length", "connection"].includes(k)) headers.set(k, v);
    }
    const upstream = await fetch(new URL(req.url ?? "/", to), {
      method: req.method ?? "GET",
      headers,
      ...(req.method === "POST" ? { body } : {}),
    });
    if (method === "tools/call") proxy.toolCalls.push(upstream.status);
    const out: Record<string, string> = {};
    upstream.headers.forEach((v, k) => {
      if (!["content-length", "transfer-encoding", "connection", "content-encoding"].includes(k)) out[k] = v;
    });
    res.writeHead(upstream.status, out);
    res.end(Buffer.from(await upstream.arrayBuffer()));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${to.pathname}`;
  proxy.close = async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  return proxy;
}

/** The JSON-RPC error of a failed call (`McpError`: code, message, data). */
async function callError(agent: Agent, name: string): Promise<{ code: number; message: string; data: Json }> {
  try {
    await agent.client.callTool({ name, arguments: {} });
  } catch (err) {
    if (err instanceof McpError)
      return { code: err.code, message: err.message, data: (err.data ?? {}) as Json };
    throw err;
  }
  throw new Error(`${name} succeeded; an error was expected`);
}

async function whoami(agent: Agent, name: string): Promise<{ sub: string; client_id?: string; exp: number }> {
  const result = await agent.client.callTool({ name, arguments: {} });
  if (result.isError) throw new Error(`${name} failed: ${JSON.stringify(result.content)}`);
  return result.structuredContent as { sub: string; client_id?: string; exp: number };
}

describe("upstream OAuth through the gateway", () => {
  let stack: Stack;
  let as: AuthServer;
  /** A second authorization server with long-lived tokens: no scheduled refresh during a test. */
  let asLong: AuthServer;
  let up: ProtectedUpstream;
  let upLong: ProtectedUpstream;
  let flaky: Flaky401Proxy;
  let worker: ManagedProcess;
  let db: Db;
  let bus: RedisBus;
  const events: CredentialEvent[] = [];
  const sealer = () => createSealer(stack.secretsKey);
  let slug = "";
  const ids: Record<string, string> = {};
  const keys: Record<string, { id: string; key: string }> = {};
  const agents: Agent[] = [];

  const agentFor = async (who: string): Promise<Agent> => {
    const agent = await connectAgent(stack.mcpUrl(slug), { token: keys[who]!.key, name: `agent-${who}` });
    agents.push(agent);
    return agent;
  };

  /** A person opens the gateway's reconnect link, logs in as `login` and consents. */
  const followConnectLink = async (connectUrl: string, login: string): Promise<void> => {
    expect(connectUrl.startsWith(`${stack.api.url}/v1/oauth/connect?ticket=`)).toBe(true);
    const redirect = await fetch(connectUrl, { redirect: "manual" });
    expect(redirect.status).toBe(302);
    const callback = new URL(await consent(String(redirect.headers.get("location")), { login }));
    expect(callback.pathname).toBe("/v1/oauth/callback");
    // The API's public URL is http://localhost:<port>; it listens on 127.0.0.1.
    const done = await fetch(`${stack.api.url}${callback.pathname}${callback.search}`);
    expect(done.status).toBe(200);
    expect(await done.text()).toContain("connected");
  };

  beforeAll(async () => {
    stack = await Stack.start({ gateways: 1 });
    // Reconnect links point at the API.
    await stack.startGateway(0, { PUBLIC_API_URL: stack.api.url });
    as = await startAuthServer({
      accessTokenTtl: 3,
      redirectUris: [`http://localhost:${stack.api.port}/v1/oauth/callback`],
    });
    asLong = await startAuthServer({ accessTokenTtl: 120 });
    up = await startProtectedUpstream({ issuer: as.issuer });
    upLong = await startProtectedUpstream({ issuer: asLong.issuer });
    flaky = await startFlaky401Proxy(upLong.url);

    const workerPort = await freePort();
    worker = new ManagedProcess("worker", process.execPath, [`${repoRoot}/apps/api/dist/worker.js`], {
      env: {
        DATABASE_URL: stack.db.url,
        REDIS_URL,
        REDIS_KEY_PREFIX: stack.redisPrefix,
        SECRETS_KEY: stack.secretsKey,
        WORKER_PORT: String(workerPort),
        API_HOST: "127.0.0.1",
        API_PORT: String(stack.api.port),
        LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "warn",
      },
    });
    await waitForHttpOk(worker, `http://127.0.0.1:${workerPort}/healthz`, 60_000);

    db = await createDb({ databaseUrl: stack.db.url });
    bus = new RedisBus({ url: REDIS_URL, keyPrefix: stack.redisPrefix });
    await bus.subscribe(BusChannel.credentials, (m) => events.push(m as CredentialEvent));

    slug = `oauth-gw-${stack.runId}`;
    const tenant = await stack.admin.createTenant(slug);
    ids.tenant = tenant.id;
    await stack.admin.putPolicy(slug, ALLOW_ALL);
    const client = (body: Json) => stack.admin.ok<Json>("POST", `/v1/tenants/${slug}/oauth-clients`, body);
    await client({
      name: "cc",
      issuer: as.issuer,
      clientId: CC_CLIENT.id,
      clientSecret: CC_CLIENT.secret,
      scopes: ["mcp:tools"],
    });
    await client({
      name: "cc-long",
      issuer: asLong.issuer,
      clientId: CC_CLIENT.id,
      clientSecret: CC_CLIENT.secret,
      scopes: ["mcp:tools"],
    });
    await client({
      name: "web",
      issuer: as.issuer,
      clientId: WEB_CLIENT.id,
      clientSecret: WEB_CLIENT.secret,
      scopes: ["mcp:tools"],
    });
    const upstream = (body: Json) =>
      stack.admin.ok<Json>("POST", `/v1/tenants/${slug}/upstreams`, {
        transport: "streamable-http",
        ...body,
      });
    ids.cc = String(
      (
        await upstream({
          name: "cc",
          url: up.url,
          auth: { mode: "oauth-client-credentials", oauthClient: "cc", resource: up.resource },
        })
      ).id,
    );
    ids.flaky = String(
      (
        await upstream({
          name: "flaky",
          url: flaky.url,
          auth: { mode: "oauth-client-credentials", oauthClient: "cc-long", resource: upLong.resource },
        })
      ).id,
    );
    ids.mine = String(
      (
        await upstream({
          name: "mine",
          url: up.url,
          auth: {
            mode: "oauth-authorization-code",
            oauthClient: "web",
            resource: up.resource,
            perUser: true,
          },
        })
      ).id,
    );
    for (const who of ["agent", "alice", "bob", "carol", "dave"]) {
      const k = await stack.admin.createKey(slug, { name: who, agent: who });
      keys[who] = { id: k.id, key: k.key };
    }
  }, 180_000);

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.close()));
    await bus?.close();
    await db?.close();
    await worker?.kill("SIGTERM", 10_000);
    await stack?.stop();
    await flaky?.close();
    await up?.close();
    await upLong?.close();
    await as?.close();
    await asLong?.close();
  });

  it("keeps a client-credentials upstream answering one agent session across many token lifetimes, with no failed call", async () => {
    const agent = await agentFor("agent");
    const sessionId = agent.sessionId;
    expect(sessionId).toBeTruthy();
    const names = (await agent.client.listTools()).tools.map((t) => t.name);
    expect(names).toContain("cc_whoami");
    const failures: string[] = [];
    const expirations = new Set<number>();
    const started = Date.now();
    let calls = 0;
    // Five lifetimes of a 3 s token.
    while (Date.now() - started < 15_000) {
      try {
        const me = await whoami(agent, "cc_whoami");
        expect(me.client_id).toBe(CC_CLIENT.id);
        expirations.add(me.exp);
        calls++;
      } catch (error) {
        failures.push(String(error));
      }
      await sleep(150);
    }
    expect(failures).toEqual([]);
    expect(calls).toBeGreaterThan(20);
    expect(expirations.size).toBeGreaterThanOrEqual(4);
    // Same session throughout: the SDK client never re-initialized.
    expect(agent.sessionId).toBe(sessionId);
    // Tokens came from the workers' refreshes, announced on the bus.
    expect(
      events.filter((e) => e.type === "updated" && e.upstreamId === ids.cc).length,
    ).toBeGreaterThanOrEqual(4);
    expect(as.stats.errors).toEqual([]);
  }, 60_000);

  it("answers a forced upstream 401 with exactly one refresh and one retry", async () => {
    const agent = await agentFor("agent");
    const first = await whoami(agent, "flaky_whoami");
    expect(first.client_id).toBe(CC_CLIENT.id);
    const grantsBefore = asLong.stats.grants.client_credentials ?? 0;
    const requestsBefore = events.filter(
      (e) => e.type === "refresh_requested" && e.upstreamId === ids.flaky,
    ).length;
    const cred = await db.prisma.upstreamCredential.findUniqueOrThrow({
      where: { upstreamId_subject: { upstreamId: ids.flaky!, subject: "" } },
    });
    flaky.toolCalls.length = 0;
    flaky.armed = 1;

    const second = await whoami(agent, "flaky_whoami");
    expect(second.client_id).toBe(CC_CLIENT.id);
    // The refused token was replaced: a newer one (a later expiry) carried the retry.
    expect(second.exp).toBeGreaterThanOrEqual(first.exp);
    expect(flaky.toolCalls).toEqual([401, 200]);
    const requested = () =>
      events.filter((e) => e.type === "refresh_requested" && e.upstreamId === ids.flaky);
    await waitFor("the gateway's refresh request on the bus", () => requested().length > requestsBefore);
    await sleep(500);
    expect(requested().length - requestsBefore).toBe(1);
    expect(requested().at(-1)).toMatchObject({ subject: "", staleGeneration: cred.generation });
    expect((asLong.stats.grants.client_credentials ?? 0) - grantsBefore).toBe(1);
    const after = await db.prisma.upstreamCredential.findUniqueOrThrow({ where: { id: cred.id } });
    expect(after.generation).toBe(cred.generation + 1);

    // Nothing else refreshes: the next calls use the new token.
    await whoami(agent, "flaky_whoami");
    expect(flaky.toolCalls).toEqual([401, 200, 200]);
    expect((asLong.stats.grants.client_credentials ?? 0) - grantsBefore).toBe(1);
  }, 60_000);

  it("gives each principal its own account on a per-user upstream, and an unconnected one the connect link", async () => {
    const alice = await agentFor("alice");
    const bob = await agentFor("bob");
    const carol = await agentFor("carol");

    // Not connected yet: a clear error that names the link to connect one's own account.
    const aliceFirst = await callError(alice, "mine_whoami");
    expect(aliceFirst.code).toBe(-32012);
    expect(aliceFirst.data.code).toBe("UPSTREAM_AUTH_REQUIRED");
    const aliceLink = String(aliceFirst.data.connectUrl);
    expect(aliceFirst.message).toContain(aliceLink);
    expect(aliceFirst.message).toMatch(/needs your account to be connected/);
    // Unconnected: the upstream's tools are left out of the list (the others stay).
    expect((await alice.client.listTools()).tools.map((t) => t.name)).not.toContain("mine_whoami");

    await followConnectLink(aliceLink, "alice");
    const bobFirst = await callError(bob, "mine_whoami");
    expect(bobFirst.data.code).toBe("UPSTREAM_AUTH_REQUIRED");
    // The links are bound to their principal: Bob's is not Alice's.
    expect(bobFirst.data.connectUrl).not.toBe(aliceLink);
    await followConnectLink(String(bobFirst.data.connectUrl), "bob");

    // Same sessions as before the connect: each sees its own subject, again and again, interleaved.
    const subjects: string[] = [];
    for (let i = 0; i < 4; i++) {
      subjects.push((await whoami(alice, "mine_whoami")).sub, (await whoami(bob, "mine_whoami")).sub);
    }
    expect(subjects).toEqual(["alice", "bob", "alice", "bob", "alice", "bob", "alice", "bob"]);
    expect((await alice.client.listTools()).tools.map((t) => t.name)).toContain("mine_whoami");

    // Carol never connected: neither Alice's nor Bob's token is used for her.
    const reachedUpstream = up.stats.ok;
    const carolError = await callError(carol, "mine_whoami");
    expect(carolError.data).toMatchObject({ code: "UPSTREAM_AUTH_REQUIRED", upstream: "mine" });
    expect(String(carolError.data.connectUrl)).toMatch(/\/v1\/oauth\/connect\?ticket=/);
    expect(up.stats.ok).toBe(reachedUpstream);

    // The stored credentials are keyed by principal.
    const rows = await db.prisma.upstreamCredential.findMany({ where: { upstreamId: ids.mine } });
    expect(rows.map((r) => r.subject).sort()).toEqual(
      [`key:${keys.alice!.id}`, `key:${keys.bob!.id}`].sort(),
    );
  }, 90_000);

  it("turns a revoked refresh token into a clear reconnect error, and a reconnect heals the same session", async () => {
    const dave = await agentFor("dave");
    const link = String((await callError(dave, "mine_whoami")).data.connectUrl);
    await followConnectLink(link, "dave");
    expect((await whoami(dave, "mine_whoami")).sub).toBe("dave");

    const row = await db.prisma.upstreamCredential.findUniqueOrThrow({
      where: { upstreamId_subject: { upstreamId: ids.mine!, subject: `key:${keys.dave!.id}` } },
    });
    // Dave's grant is revoked at the authorization server (as when a person removes the app).
    await as.revokeToken(sealer().unseal(row.refreshTokenSealed!), WEB_CLIENT);
    await waitFor(
      "the credential to become needs_reconnect",
      async () =>
        (await db.prisma.upstreamCredential.findUniqueOrThrow({ where: { id: row.id } })).status ===
        "needs_reconnect",
      { timeoutMs: 20_000, intervalMs: 200 },
    );

    const error = await callError(dave, "mine_whoami");
    expect(error.data).toMatchObject({ code: "UPSTREAM_AUTH_REQUIRED", upstream: "mine" });
    expect(error.message).toMatch(/invalid_grant/);
    expect(error.message).toContain(String(error.data.connectUrl));

    await followConnectLink(String(error.data.connectUrl), "dave");
    expect((await whoami(dave, "mine_whoami")).sub).toBe("dave");
  }, 90_000);
});
