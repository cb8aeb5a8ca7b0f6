// Bounds the README promises, on nodes as production wires them: an idle session ends after
// GATEWAY_SESSION_TTL_SECONDS (one in use does not), and a stdio upstream process is stopped
// after GATEWAY_STDIO_IDLE_TIMEOUT_MS unused and replaced after GATEWAY_STDIO_MAX_LIFETIME_MS.
// Every wait is on the thing itself (a 404, a process gone), with a generous bound.
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Fixture, startFixture } from "./fixtures.js";
import { createHarness, type Harness, REDIS_URL, seedKey } from "./harness.js";

const toolsServer = fileURLToPath(new URL("../../../test/fixtures/tools-server.mjs", import.meta.url));

let h: Harness;
let alpha: Fixture;
let tenant: { id: string; slug: string };
let key: string;

beforeAll(async () => {
  h = await createHarness();
  alpha = await startFixture("alpha");
  const t = await h.db.prisma.tenant.create({
    data: { slug: `bounds-${Date.now().toString(36)}`, name: "Bounds" },
  });
  tenant = { id: t.id, slug: t.slug };
  await h.db.prisma.upstream.create({
    data: {
      tenantId: t.id,
      name: "alpha",
      url: alpha.url,
      transport: "streamable_http",
      toolPrefix: "alpha_",
    },
  });
  await h.db.prisma.upstream.create({
    data: {
      tenantId: t.id,
      name: "local",
      transport: "stdio",
      command: process.execPath,
      args: [toolsServer, "--stdio", "--name", "local"],
      toolPrefix: "local_",
    },
  });
  await h.db.prisma.policy.create({
    data: { tenantId: t.id, version: 1, document: { defaultEffect: "allow", rules: [] } },
  });
  key = (await seedKey(h.db, t.id)).key;
}, 60_000);

afterAll(async () => {
  await h?.close();
  await alpha?.close();
});

async function waitUntil(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function rpc(url: string, body: unknown, sessionId?: string): Promise<Response> {
  return await fetch(`${url}/t/${tenant.slug}/mcp`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${key}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...(sessionId ? { "mcp-session-id": sessionId, "mcp-protocol-version": "2025-11-25" } : {}),
    },
    body: JSON.stringify(body),
  });
}

async function openSession(url: string): Promise<string> {
  const init = await rpc(url, {
    jsonrpc: "2.0",
    id: 1,
    method: "initialize",
    params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "bounds", version: "1" } },
  });
  await init.text();
  const id = init.headers.get("mcp-session-id");
  if (!id) throw new Error(`initialize: HTTP ${init.status}`);
  await (await rpc(url, { jsonrpc: "2.0", method: "notifications/initialized" }, id)).text();
  return id;
}

async function ping(url: string, sessionId: string): Promise<number> {
  const res = await rpc(url, { jsonrpc: "2.0", id: 2, method: "ping" }, sessionId);
  await res.text();
  return res.status;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("GATEWAY_SESSION_TTL_SECONDS", () => {
  it("ends an idle session (404 on every node) while one in use lives on", async () => {
    const a = await h.startOpsNode({ sessionTtlSeconds: 3 });
    const b = await h.startOpsNode({ sessionTtlSeconds: 3 });
    const redis = new Redis(REDIS_URL);
    const idle = await openSession(a.url);
    const used = await openSession(a.url);
    const started = Date.now();
    let stop = false;
    const statuses: number[] = [];
    const keepUsing = (async () => {
      while (!stop) {
        statuses.push(await ping(a.url, used));
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
    try {
      // Watched without touching it (a request would keep it alive): its record in Redis.
      await waitUntil(
        "the idle session's record to expire",
        async () => (await redis.exists(`${h.prefix}session:${idle}`)) === 0,
      );
      for (const n of [a, b]) {
        const res = await rpc(n.url, { jsonrpc: "2.0", id: 3, method: "ping" }, idle);
        expect(res.status).toBe(404);
        expect(((await res.json()) as { error: { data: { code: string } } }).error.data.code).toBe(
          "SESSION_NOT_FOUND",
        );
      }
      // The one in use outlives two TTLs, on both nodes.
      await waitUntil("two TTLs to pass", () => Date.now() - started > 6500);
    } finally {
      stop = true;
      await keepUsing;
      redis.disconnect();
    }
    expect(statuses.length).toBeGreaterThan(0);
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(await ping(b.url, used)).toBe(200);
  }, 60_000);
});

describe("stdio upstream bounds", () => {
  async function agent(url: string) {
    const client = new Client({ name: "bounds-agent", version: "1" });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${url}/t/${tenant.slug}/mcp/local`), {
        requestInit: { headers: { authorization: `Bearer ${key}` } },
      }),
    );
    return client;
  }
  async function pidOf(client: Client): Promise<number> {
    const r = await client.callTool({ name: "whoami", arguments: {} });
    const text = (r.content as Array<{ text: string }>)[0]?.text ?? "{}";
    const pid = (JSON.parse(text) as { pid?: number }).pid;
    if (typeof pid !== "number") throw new Error(`no pid in ${text}`);
    return pid;
  }

  it("GATEWAY_STDIO_IDLE_TIMEOUT_MS: an unused process is stopped; the next call starts a new one", async () => {
    const node = await h.startNode({
      allowStdio: true,
      config: { stdioIdleTimeoutMs: 1000, upstreamConnectTimeoutMs: 15_000 },
    });
    const client = await agent(node.url);
    const first = await pidOf(client);
    expect(alive(first)).toBe(true);
    await waitUntil("the idle stdio process to exit", () => !alive(first));
    const second = await pidOf(client);
    expect(second).not.toBe(first);
    expect(alive(second)).toBe(true);
    await client.close();
    await node.close();
  }, 60_000);

  it("GATEWAY_STDIO_MAX_LIFETIME_MS: a process in use is replaced once it reaches its lifetime", async () => {
    const node = await h.startNode({
      allowStdio: true,
      config: { stdioMaxLifetimeMs: 2000, stdioIdleTimeoutMs: 600_000, upstreamConnectTimeoutMs: 15_000 },
    });
    const client = await agent(node.url);
    const first = await pidOf(client);
    let next = first;
    // No call may fail across the replacement: each one is answered by the old or the new process.
    await waitUntil("a new process to serve the calls", async () => {
      next = await pidOf(client);
      return next !== first;
    });
    await waitUntil("the old process to exit", () => !alive(first));
    expect(alive(next)).toBe(true);
    await client.close();
    await node.close();
  }, 60_000);
});
