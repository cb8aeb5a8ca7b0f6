// Operations across processes (issue 4): the API and two gateway nodes (`dist/main.js`, core +
// ops) on Postgres and Redis, provisioned through the REST API. Rate limits (a key's, a tenant's
// shared by both nodes), audit rows through `GET /v1/tenants/{t}/audit`, Prometheus counters, the
// circuit breaker, the session cap, `GET /v1/gateways`, a SIGTERM under load that loses no audit
// row, and the embedded entry (`npm start`) shutting down cleanly.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALLOW_ALL, type CreatedKey } from "../support/admin-client.js";
import { connectAgent, errorData, expectThrows, firstText, rawInitialize } from "../support/agent.js";
import { printLogsOnFailure } from "../support/hooks.js";
import {
  type Fixture,
  freePort,
  ManagedProcess,
  repoRoot,
  sleep,
  startFixture,
  waitFor,
  waitForHttpOk,
} from "../support/processes.js";
import { Stack } from "../support/stack.js";

printLogsOnFailure();

let stack: Stack;
let tools: Fixture;

interface AuditItem {
  tool: string | null;
  decision: string | null;
  outcome: string | null;
  ruleId: string | null;
  actor: string | null;
  requestId: string | null;
  details: Record<string, unknown>;
}

beforeAll(async () => {
  tools = await startFixture("tools-server.mjs", ["--name", "tools"]);
  stack = await Stack.start({
    gateways: 2,
    gatewayEnv: {
      GATEWAY_MAX_SESSIONS_PER_PRINCIPAL: "3",
      GATEWAY_CIRCUIT_FAILURE_THRESHOLD: "3",
      GATEWAY_UPSTREAM_RETRY_AFTER_MS: "0",
      GATEWAY_DRAIN_TIMEOUT_MS: "10000",
    },
  });
}, 180_000);

afterAll(async () => {
  await stack?.stop();
});

async function tenant(slug: string, settings?: Record<string, unknown>, upstreamUrl = tools.url) {
  await stack.admin.createTenant(slug, settings);
  await stack.admin.createUpstream(slug, { name: "tools", url: upstreamUrl });
}

function createKey(slug: string, body: Record<string, unknown>): Promise<CreatedKey> {
  return stack.admin.ok<CreatedKey>("POST", `/v1/tenants/${slug}/api-keys`, body);
}

/** Every tool-call audit row of a tenant (all pages). */
async function audit(slug: string, query = ""): Promise<AuditItem[]> {
  const out: AuditItem[] = [];
  let cursor: string | null = null;
  do {
    const page: { items: AuditItem[]; nextCursor: string | null } = await stack.admin.ok(
      "GET",
      `/v1/tenants/${slug}/audit?kind=tool_call&limit=200${query}${cursor ? `&cursor=${cursor}` : ""}`,
    );
    out.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return out;
}

describe("node registry", () => {
  it("GET /v1/gateways lists both nodes", async () => {
    const ids = stack.gateways.map((g) => g.nodeId);
    const items = await waitFor("both nodes in /v1/gateways", async () => {
      const res = await stack.admin.ok<{ items: Array<{ id: string; version: string }> }>(
        "GET",
        "/v1/gateways",
      );
      return ids.every((id) => res.items.some((n) => n.id === id)) ? res.items : null;
    });
    for (const id of ids) expect(items.find((n) => n.id === id)?.version).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe("rate limits", () => {
  it("a key over its limit gets RATE_LIMITED with data.retryAfterMs", async () => {
    await tenant("rl-key");
    await stack.admin.putPolicy("rl-key", ALLOW_ALL);
    const key = await createKey("rl-key", { name: "limited", rateLimit: { perMinute: 2 } });
    const agent = await connectAgent(stack.mcpUrl("rl-key"), { token: key.key });
    try {
      for (const text of ["a", "b"])
        expect(firstText(await agent.client.callTool({ name: "tools_echo", arguments: { text } }))).toBe(
          `tools:echo:${text}`,
        );
      const err = await expectThrows(() =>
        agent.client.callTool({ name: "tools_echo", arguments: { text: "c" } }),
      );
      const data = errorData(err);
      expect(data?.code).toBe("RATE_LIMITED");
      expect(Number(data?.retryAfterMs)).toBeGreaterThan(0);
      expect(Number(data?.retryAfterMs)).toBeLessThanOrEqual(30_000);
    } finally {
      await agent.close();
    }
  });

  it("a tenant limit is shared by both nodes through Redis", async () => {
    await tenant("rl-tenant", { rateLimit: { perMinute: 4 } });
    await stack.admin.putPolicy("rl-tenant", ALLOW_ALL);
    const key = await createKey("rl-tenant", { name: "free" });
    const agents = await Promise.all(
      [0, 1].map((n) => connectAgent(stack.mcpUrl("rl-tenant", undefined, n), { token: key.key })),
    );
    try {
      for (let i = 0; i < 4; i++) {
        const r = await agents[i % 2]!.client.callTool({ name: "tools_echo", arguments: { text: `${i}` } });
        expect(firstText(r)).toBe(`tools:echo:${i}`);
      }
      for (const agent of agents) {
        const data = errorData(
          await expectThrows(() => agent.client.callTool({ name: "tools_echo", arguments: { text: "x" } })),
        );
        expect(data).toMatchObject({ code: "RATE_LIMITED", scope: "tenant" });
        expect(Number(data?.retryAfterMs)).toBeGreaterThan(0);
      }
    } finally {
      await Promise.all(agents.map((a) => a.close()));
    }
  });
});

describe("audit and metrics", () => {
  it("allowed and denied calls are audit rows, listed by GET /v1/tenants/{t}/audit; /metrics counts them", async () => {
    await tenant("audited");
    await stack.admin.putPolicy("audited", {
      defaultEffect: "deny",
      rules: [
        { id: "echo-ok", effect: "allow", tools: ["echo"] },
        { id: "no-secret", effect: "deny", tools: ["get_secret"] },
      ],
    });
    const key = await createKey("audited", { name: "auditor", agent: "auditor" });
    const agent = await connectAgent(stack.mcpUrl("audited", undefined, 1), { token: key.key });
    try {
      await agent.client.callTool({ name: "tools_echo", arguments: { text: "one" } });
      await agent.client.callTool({ name: "tools_echo", arguments: { text: "two" } });
      const denied = errorData(
        await expectThrows(() => agent.client.callTool({ name: "tools_get_secret", arguments: {} })),
      );
      expect(denied).toMatchObject({ code: "DENIED_BY_POLICY", ruleId: "no-secret" });
    } finally {
      await agent.close();
    }
    const items = await waitFor("three audit rows", async () => {
      const rows = await audit("audited");
      return rows.length >= 3 ? rows : null;
    });
    expect(items).toHaveLength(3);
    expect(
      items.filter((i) => i.decision === "allow" && i.outcome === "ok" && i.tool === "echo"),
    ).toHaveLength(2);
    for (const i of items) {
      expect(i.actor).toBe(`key:${key.id}`);
      expect(i.requestId).toBeTruthy();
      expect(i.details.argsHash).toMatch(/^[0-9a-f]{64}$/);
      expect(i.details).not.toHaveProperty("args");
    }
    const deniedRows = await audit("audited", "&decision=deny");
    expect(deniedRows).toHaveLength(1);
    expect(deniedRows[0]).toMatchObject({ tool: "get_secret", ruleId: "no-secret", outcome: "denied" });
    expect(await audit("audited", "&tool=echo")).toHaveLength(2);

    const metrics = await (await fetch(`${stack.gateways[1]!.metricsUrl}/metrics`)).text();
    expect(metrics).toMatch(
      /^gatehouse_gateway_tool_calls_total\{[^}]*tenant="audited"[^}]*upstream="tools"[^}]*tool="echo"[^}]*outcome="ok"[^}]*\} 2$/m,
    );
    expect(metrics).toMatch(
      /^gatehouse_gateway_tool_calls_total\{[^}]*tenant="audited"[^}]*tool="get_secret"[^}]*outcome="denied"[^}]*\} 1$/m,
    );
  });
});

describe("hard limits", () => {
  it("the circuit opens after repeated upstream failures and then fails fast, naming when to retry", async () => {
    const doomed = await startFixture("tools-server.mjs", ["--name", "doomed"]);
    await tenant("breaker", undefined, doomed.url);
    await stack.admin.putPolicy("breaker", ALLOW_ALL);
    const key = await createKey("breaker", { name: "k" });
    const agent = await connectAgent(stack.mcpUrl("breaker"), { token: key.key });
    try {
      expect(firstText(await agent.client.callTool({ name: "tools_echo", arguments: { text: "up" } }))).toBe(
        "doomed:echo:up",
      );
      await doomed.proc.kill("SIGKILL");
      for (let i = 0; i < 3; i++) {
        const data = errorData(
          await expectThrows(() => agent.client.callTool({ name: "tools_echo", arguments: { text: "x" } })),
        );
        expect(data?.code).toBe("UPSTREAM_UNAVAILABLE");
        expect(data?.circuit).toBeUndefined();
      }
      const err = await expectThrows(() =>
        agent.client.callTool({ name: "tools_echo", arguments: { text: "x" } }),
      );
      expect(errorData(err)).toMatchObject({
        code: "UPSTREAM_UNAVAILABLE",
        circuit: "open",
        upstream: "tools",
      });
      expect(Number(errorData(err)?.retryAfterMs)).toBeGreaterThan(1000);
      expect((err as Error).message).toMatch(/retry in \d+ s/);
      const metrics = await (await fetch(`${stack.gateways[0]!.metricsUrl}/metrics`)).text();
      expect(metrics).toMatch(/^gatehouse_gateway_upstream_circuit_state\{[^}]*tenant="breaker"[^}]*\} 2$/m);
    } finally {
      await agent.close();
    }
  });

  it("caps a principal's open sessions across nodes (429 RATE_LIMITED past the cap)", async () => {
    await tenant("capped");
    await stack.admin.putPolicy("capped", ALLOW_ALL);
    const key = await createKey("capped", { name: "k" });
    // Concurrent initializes on both nodes: exactly three get through.
    const tries = await Promise.allSettled(
      [0, 1, 0, 1, 0, 1].map((n) => rawInitialize(stack.mcpUrl("capped", undefined, n), { token: key.key })),
    );
    expect(tries.filter((t) => t.status === "fulfilled")).toHaveLength(3);
    const over = await expectThrows(() =>
      rawInitialize(stack.mcpUrl("capped", undefined, 1), { token: key.key }),
    );
    expect((over as Error).message).toMatch(/HTTP 429/);
    expect((over as Error).message).toContain("RATE_LIMITED");
  });
});

/**
 * How a call to a node that is shutting down may be refused: 503 SERVICE_UNAVAILABLE while it
 * drains, or no connection once it has closed its listener. Anything else is a real failure.
 */
function isShutdownRefusal(err: unknown): boolean {
  const message = String((err as Error)?.message ?? err);
  // The SDK's StreamableHTTPError carries the HTTP status as `code` and the body in the message.
  const status = (err as { code?: unknown })?.code;
  if (status === 503 && message.includes('"code":"SERVICE_UNAVAILABLE"')) return true;
  const cause = (err as { cause?: { code?: string } })?.cause;
  return (
    message.includes("fetch failed") &&
    ["ECONNREFUSED", "ECONNRESET", "UND_ERR_SOCKET"].includes(String(cause?.code))
  );
}

describe("graceful shutdown", () => {
  it("SIGTERM under load: in-flight calls finish, new ones are refused, every answered call has its audit row, exit code 0", async () => {
    await tenant("drained");
    await stack.admin.putPolicy("drained", ALLOW_ALL);
    // Three keys, three sessions each at most (the stack caps a principal at three).
    const keys = [
      await createKey("drained", { name: "load-1" }),
      await createKey("drained", { name: "load-2" }),
      await createKey("drained", { name: "long" }),
    ];
    const node = stack.gateways[1]!;
    const url = stack.mcpUrl("drained", undefined, 1);
    const agents = await Promise.all(
      Array.from({ length: 6 }, (_, i) => connectAgent(url, { token: keys[i % 2]!.key })),
    );
    const long = await Promise.all([0, 1].map(() => connectAgent(url, { token: keys[2]!.key })));
    let answered = 0;
    let refused = 0;
    const unexpected: unknown[] = [];
    let stop = false;
    const loops = agents.map(async (agent) => {
      for (let n = 0; !stop && n < 500; n++) {
        let r: unknown;
        try {
          r = await agent.client.callTool({ name: "tools_slow", arguments: { ms: 150, steps: 1 } });
        } catch (err) {
          if (isShutdownRefusal(err)) refused++;
          else unexpected.push(err);
          return; // the node is draining or gone
        }
        if (firstText(r) === "slept 150ms") answered++;
        else unexpected.push(new Error(`unexpected answer ${JSON.stringify(r)}`));
      }
    });
    await waitFor("calls answered under load", () => answered >= 6);
    // Two long calls, each in flight (its first progress seen) when the signal lands.
    const started: Array<() => void> = [];
    const inFlight = long.map(
      (agent, i) =>
        new Promise<unknown>((resolve, reject) => {
          let seen = false;
          agent.client
            .callTool({ name: "tools_slow", arguments: { ms: 3000, steps: 6 } }, undefined, {
              onprogress: () => {
                if (seen) return;
                seen = true;
                started[i]?.();
              },
              timeout: 60_000,
            })
            .then(resolve, reject);
        }),
    );
    await Promise.all(long.map((_, i) => new Promise<void>((r) => (started[i] = r))));
    const before = answered;
    const exited = node.proc.exited;
    node.proc.child.kill("SIGTERM");
    const finished = await Promise.allSettled(inFlight);
    const { code } = await exited;
    stop = true;
    await Promise.all(loops);
    await Promise.all([...agents, ...long].map((a) => a.close()));
    expect(code).toBe(0);
    // The calls in flight at SIGTERM were answered in full, not cut.
    for (const f of finished) {
      expect(f.status, String((f as PromiseRejectedResult).reason)).toBe("fulfilled");
      expect(firstText((f as PromiseFulfilledResult<unknown>).value)).toBe("slept 3000ms");
    }
    expect(unexpected.map(String)).toEqual([]);
    expect(before).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(0);
    // Everything the node answered was audited before it exited (nothing waits in a lost queue).
    const ok = (await audit("drained", "&decision=allow")).filter((r) => r.outcome === "ok");
    expect(ok.length).toBe(answered + finished.length);
    expect(node.proc.output()).not.toMatch(/giving up on queued events/);
    await stack.startGateway(1);
  });
});

describe("embedded entry", () => {
  it("runs the API and a gateway node in one process on PGlite, and shuts down cleanly on SIGTERM", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "gatehouse-e2e-embedded-"));
    const [apiPort, gwPort, webPort] = [await freePort(), await freePort(), await freePort()];
    const adminToken = `adm_${"e".repeat(40)}`;
    const proc = new ManagedProcess(
      "embedded",
      process.execPath,
      [join(repoRoot, "apps/api/dist/embedded.js")],
      {
        env: {
          DATABASE_URL: undefined,
          REDIS_URL: undefined,
          DATA_DIR: dataDir,
          API_PORT: String(apiPort),
          API_HOST: "127.0.0.1",
          GATEWAY_PORT: String(gwPort),
          GATEWAY_METRICS_PORT: "0",
          GATEWAY_HOST: "127.0.0.1",
          WEB_PORT: String(webPort),
          PUBLIC_GATEWAY_URL: `http://127.0.0.1:${gwPort}`,
          ADMIN_TOKEN: adminToken,
          LOG_LEVEL: "warn",
        },
      },
    );
    try {
      await waitForHttpOk(proc, `http://127.0.0.1:${gwPort}/readyz`, 90_000);
      await waitForHttpOk(proc, `http://127.0.0.1:${apiPort}/readyz`, 30_000);
      // The banner comes once everything, the console included, is up.
      await proc.waitForLine(/^\s+Console\s+/, 90_000);
      expect(proc.output()).toContain(`http://127.0.0.1:${gwPort}/t/{tenant}/mcp`);
      // The console is served beside them, and its sign-in page reaches this API.
      expect(proc.output()).toContain(`Console    http://127.0.0.1:${webPort}`);
      const signIn = await fetch(`http://127.0.0.1:${webPort}/sign-in`);
      expect(signIn.status).toBe(200);
      expect(await signIn.text()).toContain("Admin token");
      const api = async (method: string, path: string, body?: unknown) => {
        const res = await fetch(`http://127.0.0.1:${apiPort}${path}`, {
          method,
          headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        expect(res.status, `${method} ${path}`).toBeLessThan(300);
        return (await res.json()) as Record<string, unknown>;
      };
      await api("POST", "/v1/tenants", { slug: "homelab", name: "Homelab" });
      await api("POST", "/v1/tenants/homelab/upstreams", {
        name: "tools",
        url: tools.url,
        transport: "streamable-http",
      });
      await api("PUT", "/v1/tenants/homelab/policy", ALLOW_ALL);
      const key = (await api("POST", "/v1/tenants/homelab/api-keys", { name: "k" })).key as string;
      const agent = await connectAgent(`http://127.0.0.1:${gwPort}/t/homelab/mcp`, { token: key });
      expect(
        firstText(await agent.client.callTool({ name: "tools_echo", arguments: { text: "home" } })),
      ).toBe("tools:echo:home");
      await agent.close();
      await waitFor("the embedded node in /v1/gateways", async () => {
        const nodes = (await api("GET", "/v1/gateways")).items as unknown[];
        return nodes.length === 1;
      });
      await waitFor("the call's audit row", async () => {
        const rows = (await api("GET", "/v1/tenants/homelab/audit?kind=tool_call")).items as unknown[];
        return rows.length === 1;
      });
      const exited = proc.exited;
      proc.child.kill("SIGTERM");
      const { code, signal } = await Promise.race([
        exited,
        sleep(20_000).then(() => ({ code: -1, signal: "timeout" as unknown as NodeJS.Signals })),
      ]);
      expect({ code, signal }).toEqual({ code: 0, signal: null });
    } finally {
      await proc.kill("SIGKILL");
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 150_000);
});
