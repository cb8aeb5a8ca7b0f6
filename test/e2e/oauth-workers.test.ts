// Upstream OAuth with real processes: the API (`apps/api/dist/main.js`) and two workers
// (`apps/api/dist/worker.js`, what `npm run start:worker` runs) on Postgres, Redis and BullMQ;
// oidc-provider as the authorization server with 3-second tokens; an MCP upstream that accepts
// only its valid tokens. The agent calls the upstream with the token a gateway node would use
// (`UpstreamTokens` from @gatehouse/shared/node, on its own Redis bus connection).
import { createDb, type Db } from "@gatehouse/db";
import { BusChannel, type CredentialEvent } from "@gatehouse/shared";
import { createSealer, RedisBus, UpstreamTokens } from "@gatehouse/shared/node";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AuthServer, startAuthServer } from "../fixtures/oauth/auth-server.mjs";
import { type ProtectedUpstream, startProtectedUpstream } from "../fixtures/oauth/protected-upstream.mjs";
import { freePort, ManagedProcess, repoRoot, sleep, waitFor, waitForHttpOk } from "../support/processes.js";
import { REDIS_URL, Stack } from "../support/stack.js";

interface WorkerProcess {
  proc: ManagedProcess;
  url: string;
}

describe("upstream OAuth across processes", () => {
  let as: AuthServer;
  let up: ProtectedUpstream;
  let stack: Stack;
  let db: Db;
  let bus: RedisBus;
  let tokens: UpstreamTokens;
  const workers: WorkerProcess[] = [];
  const events: CredentialEvent[] = [];

  async function startWorker(index: number): Promise<WorkerProcess> {
    const port = await freePort();
    const proc = new ManagedProcess(
      `worker-${index}`,
      process.execPath,
      [`${repoRoot}/apps/api/dist/worker.js`],
      {
        env: {
          DATABASE_URL: stack.db.url,
          REDIS_URL,
          REDIS_KEY_PREFIX: stack.redisPrefix,
          SECRETS_KEY: stack.secretsKey,
          WORKER_PORT: String(port),
          API_HOST: "127.0.0.1",
          // Everything a worker can say, so that a token in its log would show.
          LOG_LEVEL: "debug",
        },
      },
    );
    const url = `http://127.0.0.1:${port}`;
    await waitForHttpOk(proc, `${url}/healthz`, 60_000);
    return { proc, url };
  }

  beforeAll(async () => {
    as = await startAuthServer({ accessTokenTtl: 3 });
    up = await startProtectedUpstream({ issuer: as.issuer });
    stack = await Stack.start({ gateways: 1 });
    workers.push(await startWorker(0), await startWorker(1));
    db = await createDb({ databaseUrl: stack.db.url });
    bus = new RedisBus({ url: REDIS_URL, keyPrefix: stack.redisPrefix });
    await bus.subscribe(BusChannel.credentials, (m) => events.push(m as CredentialEvent));
    tokens = new UpstreamTokens({
      bus,
      sealer: createSealer(stack.secretsKey),
      apiBaseUrl: stack.api.url,
      load: (upstreamId, subject) =>
        db.prisma.upstreamCredential.findUnique({ where: { upstreamId_subject: { upstreamId, subject } } }),
    });
    await tokens.start();
  }, 180_000);

  afterAll(async () => {
    await tokens?.stop();
    await bus?.close();
    await db?.close();
    await Promise.all(workers.map((w) => w.proc.kill("SIGTERM", 5000)));
    await stack?.stop();
    await up?.close();
    await as?.close();
  });

  it("keeps a client-credentials upstream answering while a worker stops, with no failed call", async () => {
    const admin = (method: string, path: string, body?: unknown) =>
      fetch(`${stack.api.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${stack.adminToken}`, "content-type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      }).then(async (r) => ({
        status: r.status,
        body: (await r.json().catch(() => null)) as Record<string, never>,
      }));

    const tenant = await admin("POST", "/v1/tenants", { slug: `oauth-${stack.runId}`, name: "OAuth e2e" });
    expect(tenant.status).toBe(201);
    const slug = `oauth-${stack.runId}`;
    const client = await admin("POST", `/v1/tenants/${slug}/oauth-clients`, {
      name: "cc",
      issuer: as.issuer,
      clientId: "cc-client",
      clientSecret: "cc-secret",
      scopes: ["mcp:tools"],
    });
    expect(client.status).toBe(201);
    const upstream = await admin("POST", `/v1/tenants/${slug}/upstreams`, {
      name: "protected",
      transport: "streamable-http",
      url: up.url,
      auth: { mode: "oauth-client-credentials", oauthClient: "cc", resource: up.resource },
    });
    expect(upstream.status).toBe(201);
    const ref = {
      id: String(upstream.body.id),
      name: "protected",
      authMode: "oauth-client-credentials",
      authConfig: {},
    };
    const tenantId = String(tenant.body.id);

    const agent = new Client({ name: "agent", version: "1" });
    // The access tokens the workers obtained, as they reach the upstream.
    const accessTokens = new Set<string>();
    await agent.connect(
      new StreamableHTTPClientTransport(new URL(up.url), {
        authProvider: tokens.authProvider(tenantId, ref, "key:e2e-agent"),
        fetch: (url, init) => {
          const auth = new Headers(init?.headers).get("authorization");
          if (auth?.startsWith("Bearer ")) accessTokens.add(auth.slice(7));
          return fetch(url, init);
        },
      }),
    );
    const failures: string[] = [];
    const expirations = new Set<number>();
    const started = Date.now();
    let stopped = false;
    // 5 lifetimes of a 3 s token; worker 0 shuts down (SIGTERM) half way.
    while (Date.now() - started < 15_000) {
      if (!stopped && Date.now() - started > 7_000) {
        stopped = true;
        await workers[0]!.proc.kill("SIGTERM", 10_000);
        expect(workers[0]!.proc.exitInfo?.code).toBe(0);
      }
      try {
        const result = await agent.callTool({ name: "whoami", arguments: {} });
        expirations.add((result.structuredContent as { exp: number }).exp);
      } catch (error) {
        failures.push(String(error));
      }
      await sleep(200);
    }
    await agent.close();
    expect(failures).toEqual([]);
    expect(up.stats.unauthorized.expired ?? 0).toBe(0);
    expect(expirations.size).toBeGreaterThanOrEqual(5);
    expect(as.stats.errors).toEqual([]);

    // Every refresh was announced on the bus; the credential and its jobs are visible in the API.
    const updates = events.filter((e) => e.type === "updated" && e.upstreamId === ref.id);
    expect(updates.length).toBeGreaterThanOrEqual(5);
    const creds = await admin("GET", `/v1/tenants/${slug}/upstreams/protected/credentials`);
    const items = creds.body.items as unknown as Array<{
      status: string;
      generation: number;
      lastRefreshError: unknown;
    }>;
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ status: "active", lastRefreshError: null });
    expect(items[0]!.generation).toBeGreaterThanOrEqual(5);

    // README: logs never contain tokens or secrets. Not the workers' (at debug), the API's or the
    // gateway's: no access token they obtained, not the OAuth client's secret.
    expect(accessTokens.size).toBeGreaterThanOrEqual(5);
    const outputs = [
      ...workers.map((w) => [w.proc.name, w.proc.output()] as const),
      ["api", stack.api.proc.output()] as const,
      ...stack.gateways.map((g) => [`gateway-${g.index}`, g.proc.output()] as const),
    ];
    expect(outputs[0]![1]).toContain('"level":20');
    for (const [name, out] of outputs) {
      for (const token of accessTokens)
        expect(out.includes(token), `an access token in ${name}'s log`).toBe(false);
      expect(out.includes("cc-secret"), `the client secret in ${name}'s log`).toBe(false);
    }

    // The remaining worker's metrics count its token requests.
    await waitFor(
      "the token request counter on the remaining worker's /metrics",
      async () => {
        const text = await (await fetch(`${workers[1]!.url}/metrics`)).text();
        return /gatehouse_oauth_token_requests_total\{grant="client_credentials",result="ok"\} [1-9]/.test(
          text,
        );
      },
      { timeoutMs: 5_000 },
    );
  }, 120_000);
});
