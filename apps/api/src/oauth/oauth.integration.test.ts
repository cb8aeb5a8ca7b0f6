// Test world for upstream OAuth: a real authorization server (oidc-provider, short-lived JWT
// tokens), a real MCP upstream that accepts only its tokens, a fresh Postgres database, Redis
// (bus and BullMQ under a fresh key prefix), the API (in-process Nest app, fastify inject), N
// worker instances (`createWorker`, each with its own connections, as separate processes would
// have), and a gateway's view of tokens (`UpstreamTokens` on its own bus connection).
import { randomBytes } from "node:crypto";
import { createServer as createNetServer } from "node:net";
import { createDb, type Db, type PrismaClient, type Upstream } from "@gatehouse/db";
import { createTestDatabase, createUpstreamRow } from "@gatehouse/db/testing";
import { BusChannel, type CredentialEvent } from "@gatehouse/shared";
import {
  createSealer,
  generateSecretsKey,
  RedisBus,
  type Sealer,
  UpstreamTokens,
} from "@gatehouse/shared/node";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import type { NestFastifyApplication } from "@nestjs/platform-fastify";
import { Redis } from "ioredis";
import { pino } from "pino";
import type { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AuthServer, startAuthServer } from "../../../../test/fixtures/oauth/auth-server.mjs";
import { consent } from "../../../../test/fixtures/oauth/consent.mjs";
import {
  type ProtectedUpstream,
  startProtectedUpstream,
} from "../../../../test/fixtures/oauth/protected-upstream.mjs";
import { createApiApp } from "../app.js";
import { METRICS } from "../common/tokens.js";
import { type ApiConfig, apiConfig } from "../config/api.config.js";
import { createWorker, type Worker } from "../worker.js";

const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const PUBLIC_API_URL = "http://127.0.0.1:4999";
const CALLBACK_URL = `${PUBLIC_API_URL}/v1/oauth/callback`;

interface Reply {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: tests read JSON answers loosely
  body: any;
  headers: Record<string, string | string[] | number | undefined>;
}

interface World {
  as: AuthServer;
  up: ProtectedUpstream;
  config: ApiConfig;
  db: Db;
  prisma: PrismaClient;
  sealer: Sealer;
  app: NestFastifyApplication;
  workers: Worker[];
  /** The gateway's side: tokens from the database, swapped on bus events. */
  tokens: UpstreamTokens;
  /** Every credential event seen on the bus. */
  events: CredentialEvent[];
  tenant: { id: string; slug: string };
  request(method: string, url: string, body?: unknown): Promise<Reply>;
  /** POST /oauth-clients with sensible defaults. */
  createOAuthClient(body: Record<string, unknown>): Promise<Reply>;
  upstream(data: Partial<Parameters<typeof createUpstreamRow>[2]>): Promise<Upstream>;
  /** Connects an account through the real flow: POST connect, log in and consent, callback. */
  connect(upstreamName: string, opts: { login: string; subject?: string }): Promise<Reply>;
  /** Calls the upstream's whoami tool as `principal`, with the token the gateway would use. */
  whoami(upstream: Upstream, principal: string): Promise<{ sub: string; client_id: string }>;
  startWorker(): Promise<Worker>;
  close(): Promise<void>;
}

async function startWorld(
  opts: { accessTokenTtl?: number; tokenDelayMs?: number; workers?: number } = {},
): Promise<World> {
  const cleanups: Array<() => Promise<unknown>> = [];
  const as = await startAuthServer({
    accessTokenTtl: opts.accessTokenTtl ?? 4,
    redirectUris: [CALLBACK_URL],
    tokenDelayMs: opts.tokenDelayMs,
  });
  cleanups.push(() => as.close());
  const up = await startProtectedUpstream({ issuer: as.issuer });
  cleanups.push(() => up.close());
  const database = await createTestDatabase();
  cleanups.push(() => database.drop());
  const keyPrefix = `gh-oauth-test-${randomBytes(5).toString("hex")}:`;
  cleanups.push(async () => {
    const redis = new Redis(REDIS_URL);
    const keys = await redis.keys(`${keyPrefix}*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
  });
  const config = apiConfig({
    ADMIN_TOKEN: `platform-${randomBytes(16).toString("hex")}`,
    SECRETS_KEY: generateSecretsKey(),
    DATABASE_URL: database.url,
    REDIS_URL,
    REDIS_KEY_PREFIX: keyPrefix,
    LOG_LEVEL: "silent",
    PUBLIC_API_URL,
    TOOL_DISCOVERY_INTERVAL_MS: 3000,
    HEALTH_PROBE_INTERVAL_MS: 3000,
    OAUTH_HTTP_TIMEOUT_MS: 5000,
  });
  const sealer = createSealer(config.SECRETS_KEY);
  const logger = pino({ level: "silent" });

  // The API (it opens its own database and bus from the config), and a connection for the test.
  const app = await createApiApp(config, { logger });
  cleanups.push(() => app.close());
  const db = await createDb({ databaseUrl: database.url });
  cleanups.push(() => db.close());
  const fastify = app.getHttpAdapter().getInstance();

  const workers: Worker[] = [];
  const startWorker = async () => {
    const worker = await createWorker(config, { logger, reconcileEveryMs: 2_000 });
    workers.push(worker);
    return worker;
  };
  for (let i = 0; i < (opts.workers ?? 1); i++) await startWorker();
  cleanups.push(() => Promise.all(workers.map((w) => w.close())));

  const gatewayBus = new RedisBus({ url: REDIS_URL, keyPrefix });
  const events: CredentialEvent[] = [];
  await gatewayBus.subscribe(BusChannel.credentials, (m) => events.push(m as CredentialEvent));
  const tokens = new UpstreamTokens({
    bus: gatewayBus,
    sealer,
    apiBaseUrl: PUBLIC_API_URL,
    refreshTimeoutMs: 10_000,
    load: (upstreamId, subject) =>
      db.prisma.upstreamCredential.findUnique({ where: { upstreamId_subject: { upstreamId, subject } } }),
  });
  await tokens.start();
  cleanups.push(async () => {
    await tokens.stop();
    await gatewayBus.close();
  });

  const tenant = await db.prisma.tenant.create({
    data: { slug: `t-${randomBytes(4).toString("hex")}`, name: "OAuth" },
  });

  const request = async (method: string, url: string, body?: unknown): Promise<Reply> => {
    const res = await fastify.inject({
      method: method as "GET",
      url,
      headers: {
        authorization: `Bearer ${config.ADMIN_TOKEN}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
    });
    const json = (res.headers["content-type"] ?? "").toString().includes("json") && res.body;
    return { status: res.statusCode, body: json ? JSON.parse(res.body) : res.body, headers: res.headers };
  };

  return {
    as,
    up,
    config,
    db,
    prisma: db.prisma,
    sealer,
    app,
    workers,
    tokens,
    events,
    tenant,
    request,
    createOAuthClient: (body) =>
      request("POST", `/v1/tenants/${tenant.slug}/oauth-clients`, {
        issuer: as.issuer,
        scopes: ["mcp:tools"],
        ...body,
      }),
    upstream: (data) =>
      createUpstreamRow(db.prisma, tenant.id, { url: up.url, ...data } as Parameters<
        typeof createUpstreamRow
      >[2]),
    async connect(upstreamName, { login, subject }) {
      const started = await request("POST", `/v1/tenants/${tenant.slug}/upstreams/${upstreamName}/connect`, {
        ...(subject ? { subject } : {}),
      });
      if (started.status !== 201) throw new Error(`connect failed: ${JSON.stringify(started.body)}`);
      const callback = new URL(await consent(started.body.authorizationUrl, { login }));
      if (callback.origin + callback.pathname !== CALLBACK_URL)
        throw new Error(`unexpected redirect ${callback}`);
      const res = await fastify.inject({ method: "GET", url: `${callback.pathname}${callback.search}` });
      return { status: res.statusCode, body: res.body, headers: res.headers };
    },
    async whoami(upstream, principal) {
      const client = new Client({ name: "test-agent", version: "1" });
      const transport = new StreamableHTTPClientTransport(new URL(up.url), {
        authProvider: tokens.authProvider(tenant.id, upstream, principal),
      });
      try {
        await client.connect(transport);
        const result = await client.callTool({ name: "whoami", arguments: {} });
        return result.structuredContent as { sub: string; client_id: string };
      } finally {
        await client.close().catch(() => {});
      }
    },
    startWorker,
    async close() {
      for (const cleanup of cleanups.reverse()) await cleanup().catch((e: unknown) => console.error(e));
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function closedPort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function until<T>(
  fn: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  timeoutMs = 15_000,
  what = "condition",
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Decodes a JWT's payload (no verification: the upstream verifies). */
function claims(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split(".")[1] ?? "", "base64url").toString("utf8")) as Record<
    string,
    unknown
  >;
}

describe("upstream OAuth, against a real authorization server and upstream", () => {
  let w: World;
  beforeAll(async () => {
    w = await startWorld({ accessTokenTtl: 3 });
  }, 60_000);
  afterAll(async () => {
    await w?.close();
  });

  it("manages OAuth clients: discovery checked, secret sealed and never returned, conflicts named", async () => {
    const created = await w.createOAuthClient({
      name: "crud",
      clientId: "cc-client",
      clientSecret: "cc-secret",
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      name: "crud",
      issuer: w.as.issuer,
      hasClientSecret: true,
      upstreams: [],
    });
    expect(JSON.stringify(created.body)).not.toContain("cc-secret");
    const row = await w.prisma.oAuthClient.findUniqueOrThrow({ where: { id: created.body.id } });
    expect(row.clientSecretSealed).not.toContain("cc-secret");
    expect(w.sealer.unseal(row.clientSecretSealed!)).toBe("cc-secret");

    const dup = await w.createOAuthClient({ name: "crud", clientId: "x", clientSecret: "y" });
    expect(dup.status).toBe(409);
    const bad = await w.createOAuthClient({
      name: "nowhere",
      issuer: "http://127.0.0.1:1",
      clientId: "x",
      clientSecret: "y",
    });
    expect(bad.status).toBe(422);
    expect(bad.body.error.message).toMatch(/Could not discover the authorization server/);
    const invalid = await w.request("POST", `/v1/tenants/${w.tenant.slug}/oauth-clients`, {
      name: "Bad Name",
      clientId: "",
    });
    expect(invalid.status).toBe(400);
    expect(invalid.body.error.details.map((d: { path: string }) => d.path)).toEqual(
      expect.arrayContaining(["name", "clientId", "issuer", "clientSecret"]),
    );
    const notHttps = await w.createOAuthClient({
      name: "plain",
      issuer: null,
      tokenEndpoint: "http://auth.example.com/token",
      clientId: "x",
      clientSecret: "y",
    });
    expect(notHttps.status).toBe(422);
    expect(notHttps.body.error.message).toMatch(/not https/);

    const patched = await w.request("PATCH", `/v1/tenants/${w.tenant.slug}/oauth-clients/crud`, {
      scopes: ["a", "b"],
    });
    expect(patched.status).toBe(200);
    expect(patched.body.scopes).toEqual(["a", "b"]);
    const listed = await w.request("GET", `/v1/tenants/${w.tenant.slug}/oauth-clients`);
    expect(listed.body.items.map((c: { name: string }) => c.name)).toContain("crud");

    await w.upstream({
      name: "uses-crud",
      authMode: "oauth-client-credentials",
      oauthClientId: created.body.id,
    });
    const refused = await w.request("DELETE", `/v1/tenants/${w.tenant.slug}/oauth-clients/crud`);
    expect(refused.status).toBe(409);
    expect(refused.body.error.details.upstreams).toEqual(["uses-crud"]);
    await w.prisma.upstream.deleteMany({ where: { name: "uses-crud" } });
    expect((await w.request("DELETE", `/v1/tenants/${w.tenant.slug}/oauth-clients/crud`)).status).toBe(204);
  });

  it("keeps a client-credentials upstream answering across many token lifetimes, with no failed call", async () => {
    const client = await w.createOAuthClient({
      name: "cc",
      clientId: "cc-client",
      clientSecret: "cc-secret",
    });
    // Through the REST API: the config event makes a worker fetch the first token right away.
    const unknownClient = await w.request("POST", `/v1/tenants/${w.tenant.slug}/upstreams`, {
      name: "cc-upstream",
      transport: "streamable-http",
      url: w.up.url,
      auth: { mode: "oauth-client-credentials", oauthClient: "nope" },
    });
    expect(unknownClient.status).toBe(400);
    expect(unknownClient.body.error.details[0].path).toBe("auth.oauthClient");
    const created = await w.request("POST", `/v1/tenants/${w.tenant.slug}/upstreams`, {
      name: "cc-upstream",
      transport: "streamable-http",
      url: w.up.url,
      auth: { mode: "oauth-client-credentials", oauthClient: "cc", resource: w.up.resource },
    });
    expect(created.status).toBe(201);
    expect(created.body.auth).toEqual({
      mode: "oauth-client-credentials",
      oauthClient: client.body.id,
      resource: w.up.resource,
    });
    const upstream = await w.prisma.upstream.findUniqueOrThrow({ where: { id: created.body.id } });
    await until(
      () =>
        w.prisma.upstreamCredential.findFirst({
          where: { upstreamId: upstream.id, accessTokenSealed: { not: null } },
        }),
      10_000,
      "the first client-credentials token",
    );
    const before = { ...w.up.stats.unauthorized };
    // One agent connection held open, as a gateway session would be: each request asks for the token.
    const agent = new Client({ name: "agent", version: "1" });
    await agent.connect(
      new StreamableHTTPClientTransport(new URL(w.up.url), {
        authProvider: w.tokens.authProvider(w.tenant.id, upstream, "key:agent-1"),
      }),
    );
    const seenTokens = new Set<number>();
    const failures: string[] = [];
    const deadline = Date.now() + 60_000;
    let calls = 0;
    // Until four tokens (lifetimes of 3 s) have served calls; a bound, not a speed.
    while (seenTokens.size < 4 && Date.now() < deadline) {
      try {
        const r = await agent.callTool({ name: "whoami", arguments: {} });
        const sc = r.structuredContent as { client_id: string; exp: number };
        expect(sc.client_id).toBe("cc-client");
        seenTokens.add(sc.exp);
        calls += 1;
      } catch (error) {
        failures.push(String(error));
      }
      await sleep(150);
    }
    await agent.close();
    expect(failures).toEqual([]);
    expect(calls).toBeGreaterThan(0);
    // The upstream never saw an expired or invalid token.
    expect(w.up.stats.unauthorized.expired ?? 0).toBe(before.expired ?? 0);
    expect(w.up.stats.unauthorized.invalid ?? 0).toBe(before.invalid ?? 0);
    expect(seenTokens.size).toBeGreaterThanOrEqual(4);

    const creds = await w.request("GET", `/v1/tenants/${w.tenant.slug}/upstreams/cc-upstream/credentials`);
    expect(creds.status).toBe(200);
    const [cred] = creds.body.items;
    expect(cred).toMatchObject({ subject: "", status: "active", lastRefreshError: null, connectUrl: null });
    expect(cred.generation).toBeGreaterThanOrEqual(4);
    expect(cred.jobs.length).toBeGreaterThan(0);
    // The next refresh is always queued (or running).
    expect(cred.jobs.some((j: { state: string }) => ["delayed", "waiting", "active"].includes(j.state))).toBe(
      true,
    );
    expect(JSON.stringify(creds.body)).not.toMatch(/eyJ/); // no token in the API
    const row = await w.prisma.upstreamCredential.findUniqueOrThrow({ where: { id: cred.id } });
    expect(row.accessTokenSealed).not.toMatch(/eyJ/);
    expect(claims(w.sealer.unseal(row.accessTokenSealed!)).aud).toBe(w.up.resource);
  }, 40_000);

  it("connects an account with the authorization code flow, then refreshes it with rotated refresh tokens", async () => {
    const client = await w.createOAuthClient({
      name: "web",
      clientId: "web-client",
      clientSecret: "web-secret",
    });
    const upstream = await w.upstream({
      name: "shared-ac",
      authMode: "oauth-authorization-code",
      authConfig: { resource: w.up.resource },
      oauthClientId: client.body.id,
    });
    // Before anyone connects, the gateway's answer says where to connect.
    const before = await w.tokens.token(w.tenant.id, upstream, "key:agent-1").catch((e: unknown) => e);
    expect(before).toMatchObject({ code: "UPSTREAM_AUTH_REQUIRED" });

    const done = await w.connect("shared-ac", { login: "alice" });
    expect(done.status).toBe(200);
    expect(done.body).toContain("Your account is connected to shared-ac");
    const row = await w.prisma.upstreamCredential.findUniqueOrThrow({
      where: { upstreamId_subject: { upstreamId: upstream.id, subject: "" } },
    });
    expect(row.refreshTokenSealed).not.toBeNull();
    const firstRefreshToken = w.sealer.unseal(row.refreshTokenSealed!);
    expect(row.refreshTokenSealed).not.toContain(firstRefreshToken);
    expect(await w.prisma.oAuthState.count()).toBe(0); // single use
    expect(await w.whoami(upstream, "key:agent-1")).toMatchObject({ sub: "alice", client_id: "web-client" });

    // Two lifetimes later the worker has refreshed at least twice, each time with a new refresh token.
    await until(
      async () =>
        (await w.prisma.upstreamCredential.findUniqueOrThrow({ where: { id: row.id } })).generation >=
        row.generation + 2,
      12_000,
      "two refreshes",
    );
    const later = await w.prisma.upstreamCredential.findUniqueOrThrow({ where: { id: row.id } });
    expect(later.status).toBe("active");
    expect(w.sealer.unseal(later.refreshTokenSealed!)).not.toBe(firstRefreshToken);
    expect(await w.whoami(upstream, "key:agent-1")).toMatchObject({ sub: "alice" });
    expect(w.as.stats.errors).toEqual([]);

    const audit = await w.prisma.auditEvent.findFirst({
      where: { tenantId: w.tenant.id, outcome: "connected" },
    });
    expect(audit?.details).toMatchObject({ event: "upstream_credential.connected", credentialId: row.id });
    // A replayed callback (same state) is refused.
    const replay = await w.app
      .getHttpAdapter()
      .getInstance()
      .inject({ method: "GET", url: "/v1/oauth/callback?state=nope&code=x" });
    expect(replay.statusCode).toBe(400);
    expect(replay.body).toContain("Unknown or already used authorization state");
  }, 40_000);

  it("keeps per-user credentials apart: each principal's calls carry only their own token", async () => {
    const client = await w.createOAuthClient({
      name: "web-pu",
      clientId: "web-client",
      clientSecret: "web-secret",
    });
    const upstream = await w.upstream({
      name: "per-user",
      authMode: "oauth-authorization-code",
      authConfig: { resource: w.up.resource, perUser: true },
      oauthClientId: client.body.id,
    });
    const noSubject = await w.request("POST", `/v1/tenants/${w.tenant.slug}/upstreams/per-user/connect`, {});
    expect(noSubject.status).toBe(400);
    expect(noSubject.body.error.details[0].path).toBe("subject");

    expect((await w.connect("per-user", { login: "alice", subject: "key:alice-key" })).status).toBe(200);
    expect((await w.connect("per-user", { login: "bob", subject: "sub:bob@example.com" })).status).toBe(200);
    const [alice, bob] = await Promise.all([
      w.whoami(upstream, "key:alice-key"),
      w.whoami(upstream, "sub:bob@example.com"),
    ]);
    expect(alice.sub).toBe("alice");
    expect(bob.sub).toBe("bob");
    // Again after both were refreshed by the workers (waited for: each row's generation moves on).
    const generations = async () =>
      (
        await w.prisma.upstreamCredential.findMany({
          where: { upstreamId: upstream.id, subject: { in: ["key:alice-key", "sub:bob@example.com"] } },
          orderBy: { subject: "asc" },
        })
      ).map((r) => r.generation);
    const [g1, g2] = await generations();
    await until(
      async () => {
        const [n1, n2] = await generations();
        return n1! > g1! && n2! > g2!;
      },
      30_000,
      "both credentials refreshed",
    );
    expect((await w.whoami(upstream, "sub:bob@example.com")).sub).toBe("bob");
    expect((await w.whoami(upstream, "key:alice-key")).sub).toBe("alice");

    // Carol has not connected: she gets a link bound to her, never someone else's token.
    const carol = (await w.tokens.token(w.tenant.id, upstream, "key:carol-key").catch((e: unknown) => e)) as {
      code: string;
      details: { connectUrl: string };
      message: string;
    };
    expect(carol.code).toBe("UPSTREAM_AUTH_REQUIRED");
    expect(carol.message).toContain("needs your account to be connected");
    const link = new URL(carol.details.connectUrl);
    expect(link.origin + link.pathname).toBe(`${PUBLIC_API_URL}/v1/oauth/connect`);
    const redirect = await w.app
      .getHttpAdapter()
      .getInstance()
      .inject({ method: "GET", url: `${link.pathname}${link.search}` });
    expect(redirect.statusCode).toBe(302);
    expect(redirect.headers.location).toMatch(new RegExp(`^${w.as.issuer}/auth\\?`));
    // Carol completes the flow from her link and gets her own credential.
    const callback = new URL(await consent(String(redirect.headers.location), { login: "carol" }));
    const finished = await w.app
      .getHttpAdapter()
      .getInstance()
      .inject({ method: "GET", url: `${callback.pathname}${callback.search}` });
    expect(finished.statusCode).toBe(200);
    expect((await w.whoami(upstream, "key:carol-key")).sub).toBe("carol");
    // The link worked once.
    const reused = await w.app
      .getHttpAdapter()
      .getInstance()
      .inject({ method: "GET", url: `${link.pathname}${link.search}` });
    expect(reused.statusCode).toBe(400);
    const subjects = (
      await w.request("GET", `/v1/tenants/${w.tenant.slug}/upstreams/per-user/credentials`)
    ).body.items.map((c: { subject: string }) => c.subject);
    expect(subjects).toEqual(["key:alice-key", "key:carol-key", "sub:bob@example.com"]);
    const forged = await w.app
      .getHttpAdapter()
      .getInstance()
      .inject({ method: "GET", url: "/v1/oauth/connect?ticket=v1.a.b.c" });
    expect(forged.statusCode).toBe(400);
  }, 60_000);

  it("turns a revoked refresh token into needs_reconnect, with an audit event, a metric and a clear error", async () => {
    const client = await w.createOAuthClient({
      name: "web-rv",
      clientId: "web-client",
      clientSecret: "web-secret",
    });
    const upstream = await w.upstream({
      name: "revoked",
      authMode: "oauth-authorization-code",
      authConfig: { resource: w.up.resource, perUser: true },
      oauthClientId: client.body.id,
    });
    await w.connect("revoked", { login: "dave", subject: "key:dave-key" });
    const row = await w.prisma.upstreamCredential.findUniqueOrThrow({
      where: { upstreamId_subject: { upstreamId: upstream.id, subject: "key:dave-key" } },
    });
    // Dave's grant is revoked at the authorization server (as when a person removes the app).
    await w.as.revokeToken(w.sealer.unseal(row.refreshTokenSealed!), {
      id: "web-client",
      secret: "web-secret",
    });
    const marked = await until(
      async () => {
        const r = await w.prisma.upstreamCredential.findUniqueOrThrow({ where: { id: row.id } });
        return r.status === "needs_reconnect" ? r : null;
      },
      15_000,
      "needs_reconnect",
    );
    expect(marked.lastRefreshError).toMatch(/^invalid_grant/);
    const view = (await w.request("GET", `/v1/tenants/${w.tenant.slug}/upstreams/revoked/credentials`)).body
      .items[0];
    expect(view).toMatchObject({
      status: "needs_reconnect",
      lastRefreshError: expect.stringMatching(/invalid_grant/),
    });
    // Links go only to the principal itself, in its UPSTREAM_AUTH_REQUIRED answer (below).
    expect(view.connectUrl).toBeNull();
    const audit = await w.prisma.auditEvent.findFirst({
      where: { tenantId: w.tenant.id, outcome: "needs_reconnect" },
    });
    expect(audit).toMatchObject({ kind: "admin", actor: "worker", upstream: "revoked" });
    expect(audit?.details).toMatchObject({
      event: "upstream_credential.needs_reconnect",
      subject: "key:dave-key",
    });
    expect(w.events.some((e) => e.type === "needs_reconnect" && e.credentialId === row.id)).toBe(true);
    const counted = await Promise.all(
      w.workers.map(async (worker) => {
        const metric = await worker.app
          .get<symbol, Registry>(METRICS)
          .getSingleMetric("gatehouse_oauth_needs_reconnect_total")
          ?.get();
        return metric?.values.find((v) => v.labels.mode === "oauth-authorization-code")?.value ?? 0;
      }),
    );
    expect(counted.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(1);

    // Once the old token expires, the gateway answers with the reason and the link.
    await until(async () => !row.expiresAt || row.expiresAt.getTime() < Date.now(), 5_000, "expiry");
    const error = (await w.tokens.token(w.tenant.id, upstream, "key:dave-key").catch((e: unknown) => e)) as {
      code: string;
      message: string;
      details: { connectUrl: string };
    };
    expect(error.code).toBe("UPSTREAM_AUTH_REQUIRED");
    expect(error.message).toMatch(/invalid_grant/);
    expect(error.message).toContain(error.details.connectUrl);
    // Reconnecting heals it.
    await w.connect("revoked", { login: "dave", subject: "key:dave-key" });
    expect((await w.whoami(upstream, "key:dave-key")).sub).toBe("dave");
  }, 40_000);

  it("explains a refused client secret and recovers when an admin fixes the OAuth client", async () => {
    const client = await w.createOAuthClient({
      name: "cc-bad",
      clientId: "cc-client",
      clientSecret: "wrong",
    });
    const upstream = await w.upstream({
      name: "cc-bad-upstream",
      authMode: "oauth-client-credentials",
      authConfig: { resource: w.up.resource },
      oauthClientId: client.body.id,
    });
    const error = (await w.tokens.token(w.tenant.id, upstream, "key:agent-1").catch((e: unknown) => e)) as {
      code: string;
      message: string;
    };
    expect(error.code).toBe("UPSTREAM_AUTH_REQUIRED");
    expect(error.message).toMatch(/refused the platform's OAuth client credentials \(invalid_client/);
    expect(error.message).toMatch(/An admin must fix the upstream's OAuth client/);
    const view = (
      await w.request("GET", `/v1/tenants/${w.tenant.slug}/upstreams/cc-bad-upstream/credentials`)
    ).body.items[0];
    expect(view).toMatchObject({ status: "needs_reconnect", connectUrl: null });
    expect(view.lastRefreshError).toMatch(/^invalid_client/);

    const fixed = await w.request("PATCH", `/v1/tenants/${w.tenant.slug}/oauth-clients/cc-bad`, {
      clientSecret: "cc-secret",
    });
    expect(fixed.status).toBe(200);
    await until(
      async () =>
        (await w.prisma.upstreamCredential.findFirst({ where: { upstreamId: upstream.id } }))?.status ===
        "active",
      10_000,
      "the credential to recover",
    );
    expect((await w.whoami(upstream, "key:agent-1")).client_id).toBe("cc-client");
  }, 30_000);

  it("mcp-oauth: discovers the authorization server from the upstream's 401 and registers dynamically", async () => {
    const upstream = await w.upstream({ name: "mcp-dcr", authMode: "mcp-oauth", authConfig: {} });
    const registrations = w.as.stats.registrations;
    const dcr = await w.connect("mcp-dcr", { login: "erin" });
    expect(dcr.status, String(dcr.body)).toBe(200);
    expect(w.as.stats.registrations).toBe(registrations + 1);
    const stored = await w.prisma.upstream.findUniqueOrThrow({
      where: { id: upstream.id },
      include: { oauthClient: true },
    });
    expect(stored.authConfig).toMatchObject({
      resource: w.up.resource,
      authorizationServer: w.as.issuer,
      registration: "dynamic",
    });
    expect(stored.oauthClient?.issuer).toBe(w.as.issuer);
    expect(stored.oauthClient?.clientSecretSealed).toBeTruthy();
    const who = await w.whoami(stored, "key:agent-1");
    expect(who.sub).toBe("erin");
    expect(who.client_id).toBe(stored.oauthClient?.clientId);
    // A second connect reuses the registration.
    await w.connect("mcp-dcr", { login: "erin" });
    expect(w.as.stats.registrations).toBe(registrations + 1);

    // The client-credentials flavour: the worker registers and gets the token by itself.
    const cc = await w.upstream({
      name: "mcp-cc",
      authMode: "mcp-oauth",
      authConfig: { grant: "client_credentials" },
    });
    const ccWho = await w.whoami(cc, "key:agent-1");
    const ccStored = await w.prisma.upstream.findUniqueOrThrow({
      where: { id: cc.id },
      include: { oauthClient: true },
    });
    expect(ccWho.client_id).toBe(ccStored.oauthClient?.clientId);
    expect(ccStored.authConfig).toMatchObject({ registration: "dynamic", resource: w.up.resource });
  }, 40_000);

  it("serves its OAuth client ID metadata document, with no token, at the URL it names as client_id", async () => {
    const fastify = w.app.getHttpAdapter().getInstance() as {
      inject(o: { method: "GET"; url: string }): Promise<{
        statusCode: number;
        headers: Record<string, unknown>;
        body: string;
      }>;
    };
    const res = await fastify.inject({ method: "GET", url: "/v1/oauth/client-metadata.json" });
    expect(res.statusCode).toBe(200);
    expect(String(res.headers["content-type"])).toContain("application/json");
    // OAuth Client ID Metadata Document (MCP authorization, 2025-11-25): client_id is the URL the
    // document is served at; a public client (PKCE, no secret) whose redirect is our callback.
    expect(JSON.parse(res.body)).toEqual({
      client_id: `${PUBLIC_API_URL}/v1/oauth/client-metadata.json`,
      client_name: "Gatehouse",
      client_uri: PUBLIC_API_URL,
      redirect_uris: [CALLBACK_URL],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    });
  });

  it("discovers tools and probes health of upstreams, and shows the jobs", async () => {
    const upstream = await w.prisma.upstream.findFirstOrThrow({
      where: { tenantId: w.tenant.id, name: "cc-upstream" },
    });
    const discovered = await until(
      async () => {
        const u = await w.prisma.upstream.findUniqueOrThrow({ where: { id: upstream.id } });
        return u.tools && u.health ? u : null;
      },
      15_000,
      "discovery and health",
    );
    expect((discovered.tools as Array<{ name: string }>).map((t) => t.name)).toEqual(["whoami"]);
    expect(discovered.health).toBe("ok");
    const jobs = await w.request("GET", `/v1/tenants/${w.tenant.slug}/upstreams/cc-upstream/jobs`);
    expect(jobs.status).toBe(200);
    expect(jobs.body.health).toBe("ok");
    const types = new Set(jobs.body.jobs.map((j: { type: string }) => j.type));
    expect(types).toEqual(new Set(["upstream-discovery", "upstream-health"]));
    // An upstream without a token is reported, not hidden.
    const noAuth = await w.upstream({ name: "no-token", authMode: "none" });
    const probed = await until(
      async () => (await w.prisma.upstream.findUniqueOrThrow({ where: { id: noAuth.id } })).health,
      15_000,
      "health of no-token",
    );
    expect(probed).toMatch(/^auth_required/);

    // Issue 9: an upstream nobody listens on said "Version negotiation probe failed: fetch failed".
    const port = await closedPort();
    const gone = await w.upstream({ name: "gone", authMode: "none", url: `http://127.0.0.1:${port}/mcp` });
    const goneHealth = await until(
      async () => (await w.prisma.upstream.findUniqueOrThrow({ where: { id: gone.id } })).health,
      15_000,
      "health of gone",
    );
    expect(goneHealth).toBe(
      `unreachable: Cannot reach http://127.0.0.1:${port}: connection refused at 127.0.0.1:${port} (is the server running?)`,
    );
    const goneJobs = await until(
      async () => {
        const r = await w.request("GET", `/v1/tenants/${w.tenant.slug}/upstreams/gone/jobs`);
        return r.body.jobs.find(
          (j: { type: string; error: string | null }) => j.type === "upstream-discovery" && j.error,
        );
      },
      15_000,
      "the failed discovery job",
    );
    expect(goneJobs.error).toContain(`connection refused at 127.0.0.1:${port}`);
  }, 40_000);
});

describe("two workers", () => {
  let w: World;
  beforeAll(async () => {
    // Slow token endpoint: a double refresh, if it could happen, would overlap.
    w = await startWorld({ accessTokenTtl: 2, tokenDelayMs: 250, workers: 2 });
  }, 60_000);
  afterAll(async () => {
    await w?.close();
  });

  it("never refresh the same credential twice at once, however many ask", async () => {
    const stopped: Worker[] = [];
    const client = await w.createOAuthClient({
      name: "web",
      clientId: "web-client",
      clientSecret: "web-secret",
    });
    const upstream = await w.upstream({
      name: "busy",
      authMode: "oauth-authorization-code",
      authConfig: { resource: w.up.resource, perUser: true },
      oauthClientId: client.body.id,
    });
    const users = ["u1", "u2", "u3", "u4"];
    for (const user of users) await w.connect("busy", { login: user, subject: `key:${user}` });
    const bus = new RedisBus({ url: REDIS_URL, keyPrefix: w.config.REDIS_KEY_PREFIX });
    try {
      // Until the users' credentials were refreshed four times each on average (a bound of 60 s,
      // not a speed): every 100 ms "gateway nodes" report 401s for random users, three at once, and
      // an admin asks for a refresh now and then; the scheduled refreshes run too.
      const deadline = Date.now() + 60_000;
      const refreshedEnough = async () =>
        (await w.prisma.upstreamCredential.findMany({ where: { upstreamId: upstream.id } })).reduce(
          (sum, r) => sum + (r.generation - 1),
          0,
        ) >=
        users.length * 4;
      let round = 0;
      while (Date.now() < deadline && !(round % 10 === 0 && (await refreshedEnough()))) {
        const user = users[round % users.length]!;
        const row = await w.prisma.upstreamCredential.findUniqueOrThrow({
          where: { upstreamId_subject: { upstreamId: upstream.id, subject: `key:${user}` } },
        });
        const ask: CredentialEvent = {
          type: "refresh_requested",
          tenantId: w.tenant.id,
          upstreamId: upstream.id,
          subject: `key:${user}`,
          staleGeneration: row.generation,
        };
        await Promise.all([1, 2, 3].map(() => bus.publish(BusChannel.credentials, ask)));
        if (round % 7 === 0) {
          const res = await w.request(
            "POST",
            `/v1/tenants/${w.tenant.slug}/upstreams/busy/credentials/refresh`,
            {
              subject: `key:${user}`,
            },
          );
          expect(res.status).toBe(202);
        }
        round += 1;
        await sleep(100);
      }
    } finally {
      await bus.close();
    }
    for (const user of users) expect((await w.whoami(upstream, `key:${user}`)).sub).toBe(user);
    // Stop both workers (running jobs finish) so the counts below are final.
    await Promise.all(
      w.workers.splice(0).map(async (worker) => {
        stopped.push(worker);
        await worker.close();
      }),
    );
    const rows = await w.prisma.upstreamCredential.findMany({ where: { upstreamId: upstream.id } });
    expect(rows.map((r) => r.status)).toEqual(["active", "active", "active", "active"]);
    // A refresh token redeemed twice would have tripped reuse detection (invalid_grant, grant revoked).
    expect(w.as.stats.errors).toEqual([]);
    expect(w.as.stats.maxConcurrentPerRefreshToken).toBe(1);
    const refreshes = rows.reduce((sum, r) => sum + (r.generation - 1), 0);
    expect(w.as.stats.grants.refresh_token).toBe(refreshes);
    expect(w.as.stats.refreshRequests).toBe(refreshes);
    expect(refreshes).toBeGreaterThanOrEqual(users.length * 4);
    // Both workers took part.
    const perWorker = await Promise.all(
      stopped.map(async (worker) => {
        const metric = await worker.app
          .get<symbol, Registry>(METRICS)
          .getSingleMetric("gatehouse_oauth_token_requests_total")
          ?.get();
        return (
          metric?.values.find((v) => v.labels.grant === "authorization_code" && v.labels.result === "ok")
            ?.value ?? 0
        );
      }),
    );
    expect(perWorker.every((n) => n > 0)).toBe(true);
    expect(perWorker.reduce((a, b) => a + b, 0)).toBe(refreshes);
  }, 60_000);
});
