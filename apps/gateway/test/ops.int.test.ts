// Gateway nodes as production runs them (startGatewayNode: core + ops) on real Postgres and Redis,
// in front of a real HTTP upstream: rate limits, audit rows, metrics, circuit breaker, session cap,
// request ids in logs, tracing, graceful drain, node registry.
import { createHash, randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import type { Db, Prisma } from "@gatehouse/db";
import { listLiveNodes } from "@gatehouse/db";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHarness, type Harness, type OpsNode, seedKey } from "./harness.js";
import { type OpsUpstream, startOpsUpstream } from "./ops-upstream.js";

type Json = Record<string, unknown>;
type Msg = { id?: unknown; result?: Json; error?: { code: number; message: string; data?: Json } };

let h: Harness;
let db: Db;
let upstream: OpsUpstream;
let nodeA: OpsNode;
let nodeB: OpsNode;

async function tenantWith(
  settings: Json = {},
  rules: Json[] = [{ id: "allow-all", effect: "allow", principals: ["*"] }],
): Promise<{ id: string; slug: string }> {
  const slug = `ops-${randomBytes(3).toString("hex")}`;
  const t = await db.prisma.tenant.create({
    data: { slug, name: slug, settings: settings as Prisma.InputJsonObject },
  });
  await db.prisma.upstream.create({
    data: {
      tenantId: t.id,
      name: "ops",
      url: upstream.url,
      transport: "streamable_http",
      toolPrefix: "ops_",
    },
  });
  await db.prisma.policy.create({
    data: {
      tenantId: t.id,
      version: 1,
      document: { defaultEffect: "deny", rules } as unknown as Prisma.InputJsonObject,
    },
  });
  return { id: t.id, slug };
}

/** A raw 2025-11-25 agent: initialize once, then JSON-RPC calls with the session header. */
class Agent {
  sessionId = "";
  private nextId = 1;
  lastHeaders = new Headers();
  lastStatus = 0;

  constructor(
    readonly url: string,
    readonly key: string,
  ) {}

  async post(body: Json, extra: Record<string, string> = {}): Promise<Msg | null> {
    const res = await fetch(this.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        authorization: `Bearer ${this.key}`,
        ...(this.sessionId ? { "mcp-session-id": this.sessionId, "mcp-protocol-version": "2025-11-25" } : {}),
        ...extra,
      },
      body: JSON.stringify(body),
    });
    this.lastHeaders = res.headers;
    this.lastStatus = res.status;
    const text = await res.text();
    if (!text) return null;
    if ((res.headers.get("content-type") ?? "").includes("text/event-stream")) {
      for (const line of text.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const m = JSON.parse(line.slice(5)) as Msg;
        if (m.id !== undefined) return m;
      }
      return null;
    }
    return JSON.parse(text) as Msg;
  }

  async init(): Promise<this> {
    const r = await this.post({
      jsonrpc: "2.0",
      id: 0,
      method: "initialize",
      params: {
        protocolVersion: "2025-11-25",
        capabilities: {},
        clientInfo: { name: "ops-test", version: "1" },
      },
    });
    if (this.lastStatus !== 200) throw new Error(`initialize: HTTP ${this.lastStatus} ${JSON.stringify(r)}`);
    this.sessionId = this.lastHeaders.get("mcp-session-id") ?? "";
    await this.post({ jsonrpc: "2.0", method: "notifications/initialized" });
    return this;
  }

  call(name: string, args: Json = {}, extra: Record<string, string> = {}): Promise<Msg | null> {
    return this.post(
      { jsonrpc: "2.0", id: this.nextId++, method: "tools/call", params: { name, arguments: args } },
      extra,
    );
  }
}

async function metricsOf(node: OpsNode): Promise<string> {
  return await (await fetch(`${node.metricsUrl}/metrics`)).text();
}

/** The value of one sample line, e.g. `name{a="b"}`; labels may appear in any order. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    const body = line.slice(name.length + 1, line.indexOf("}"));
    if (Object.entries(labels).every(([k, v]) => body.includes(`${k}="${v}"`)))
      return Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return undefined;
}

async function until<T>(fn: () => Promise<T | undefined | null | false>, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  h = await createHarness();
  db = h.db;
  upstream = await startOpsUpstream();
  [nodeA, nodeB] = await Promise.all([
    h.startOpsNode({ maxSessionsPerPrincipal: 3 }),
    h.startOpsNode({ maxSessionsPerPrincipal: 3 }),
  ]);
});

afterAll(async () => {
  await h?.close();
  await upstream?.close();
});

describe("rate limits", () => {
  it("a key over its limit gets RATE_LIMITED with data.retryAfterMs", async () => {
    const t = await tenantWith();
    const { key } = await seedKey(db, t.id, { rateLimitPerMinute: 3 });
    const agent = await new Agent(`${nodeA.url}/t/${t.slug}/mcp`, key).init();
    for (let i = 0; i < 3; i++) expect((await agent.call("ops_echo", { text: "x" }))?.result).toBeTruthy();
    const refused = await agent.call("ops_echo", { text: "x" });
    expect(refused?.error?.code).toBe(-32029);
    expect(refused?.error?.data?.code).toBe("RATE_LIMITED");
    expect(refused?.error?.data?.scope).toBe("key");
    const retry = Number(refused?.error?.data?.retryAfterMs);
    // 3 per minute: a token comes back every 20 s.
    expect(retry).toBeGreaterThan(0);
    expect(retry).toBeLessThanOrEqual(20_000);
    expect(refused?.error?.message).toMatch(/retry in \d+ s/);
    expect(
      sample(await metricsOf(nodeA), "gatehouse_gateway_rate_limit_rejections_total", {
        tenant: t.slug,
        scope: "key",
      }),
    ).toBe(1);
  });

  it("a tenant limit is one bucket for every node (shared through Redis)", async () => {
    const t = await tenantWith({ rateLimit: { perMinute: 4 } });
    const { key } = await seedKey(db, t.id);
    const a = await new Agent(`${nodeA.url}/t/${t.slug}/mcp`, key).init();
    const b = await new Agent(`${nodeB.url}/t/${t.slug}/mcp`, key).init();
    for (let i = 0; i < 4; i++) {
      const r = await (i % 2 === 0 ? a : b).call("ops_echo", { text: String(i) });
      expect(r?.result, JSON.stringify(r)).toBeTruthy();
    }
    for (const agent of [a, b]) {
      const refused = await agent.call("ops_echo", { text: "over" });
      expect(refused?.error?.data?.code).toBe("RATE_LIMITED");
      expect(refused?.error?.data?.scope).toBe("tenant");
      expect(Number(refused?.error?.data?.retryAfterMs)).toBeGreaterThan(0);
    }
  });

  it("a policy rule's rateLimit limits the calls that rule allows, per principal", async () => {
    const t = await tenantWith({}, [
      { id: "echo-sparingly", effect: "allow", tools: ["echo"], rateLimit: { perMinute: 2 } },
      { id: "slow-freely", effect: "allow", tools: ["slow"] },
    ]);
    const one = await seedKey(db, t.id);
    const two = await seedKey(db, t.id);
    const a = await new Agent(`${nodeA.url}/t/${t.slug}/mcp`, one.key).init();
    const b = await new Agent(`${nodeB.url}/t/${t.slug}/mcp`, two.key).init();
    expect((await a.call("ops_echo", { text: "1" }))?.result).toBeTruthy();
    expect((await a.call("ops_echo", { text: "2" }))?.result).toBeTruthy();
    const refused = await a.call("ops_echo", { text: "3" });
    expect(refused?.error?.data?.code).toBe("RATE_LIMITED");
    expect(refused?.error?.data?.scope).toBe("tool");
    expect(refused?.error?.message).toContain("echo-sparingly");
    // Other tools, and other principals, are not affected.
    expect((await a.call("ops_slow", { ms: 1 }))?.result).toBeTruthy();
    expect((await b.call("ops_echo", { text: "b" }))?.result).toBeTruthy();
  });

  it("a principal flooding requests of any kind gets HTTP 429 with Retry-After", async () => {
    const node = await h.startOpsNode({ principalRequestsPerMinute: 5 });
    try {
      const t = await tenantWith();
      const { key } = await seedKey(db, t.id);
      const agent = await new Agent(`${node.url}/t/${t.slug}/mcp`, key).init(); // 2 requests
      await agent.post({ jsonrpc: "2.0", id: 1, method: "ping" });
      await agent.post({ jsonrpc: "2.0", id: 2, method: "tools/list" });
      await agent.post({ jsonrpc: "2.0", id: 3, method: "ping" });
      expect(agent.lastStatus).toBe(200);
      const body = await agent.post({ jsonrpc: "2.0", id: 4, method: "ping" });
      expect(agent.lastStatus).toBe(429);
      expect(Number(agent.lastHeaders.get("retry-after"))).toBeGreaterThanOrEqual(1);
      expect(body?.error?.data?.code).toBe("RATE_LIMITED");
      expect(Number(body?.error?.data?.retryAfterMs)).toBeGreaterThan(0);
      // Another principal of the same tenant is not affected.
      const other = await seedKey(db, t.id);
      await h.bump(t.id);
      await until(async () => node.node.gateway.tenants.peek(t.id)?.keysById.has(other.id));
      await new Agent(`${node.url}/t/${t.slug}/mcp`, other.key).init();
    } finally {
      await node.close();
    }
  });
});

describe("audit and metrics", () => {
  it("writes one row per call, allowed or denied, with size and hash of the arguments only", async () => {
    const t = await tenantWith({}, [
      { id: "echo-ok", effect: "allow", tools: ["echo"] },
      { id: "no-slow", effect: "deny", tools: ["slow"] },
    ]);
    const { id: keyId, key } = await seedKey(db, t.id, { agent: "auditor" });
    const agent = await new Agent(`${nodeA.url}/t/${t.slug}/mcp`, key).init();
    const args = { text: "secret-ish" };
    expect((await agent.call("ops_echo", args, { "x-request-id": "audit-allowed-1" }))?.result).toBeTruthy();
    expect(agent.lastHeaders.get("x-request-id")).toBe("audit-allowed-1");
    const denied = await agent.call("ops_slow", { ms: 1 }, { "x-request-id": "audit-denied-1" });
    expect(denied?.error?.data?.code).toBe("DENIED_BY_POLICY");
    const rows = await until(async () => {
      const r = await db.prisma.auditEvent.findMany({ where: { tenantId: t.id }, orderBy: { at: "asc" } });
      return r.length >= 2 ? r : null;
    });
    expect(rows).toHaveLength(2);
    const [ok, no] = rows;
    expect(ok).toMatchObject({
      kind: "tool_call",
      actor: `key:${keyId}`,
      agent: "auditor",
      upstream: "ops",
      tool: "echo",
      decision: "allow",
      ruleId: "echo-ok",
      outcome: "ok",
      requestId: "audit-allowed-1",
    });
    const json = JSON.stringify(args);
    expect(ok?.details).toMatchObject({
      argsSize: Buffer.byteLength(json),
      argsHash: createHash("sha256").update(json).digest("hex"),
    });
    expect(ok?.details).not.toHaveProperty("args");
    expect(typeof (ok!.details as Json).upstreamLatencyMs).toBe("number");
    expect(no).toMatchObject({
      tool: "slow",
      decision: "deny",
      ruleId: "no-slow",
      outcome: "denied",
      requestId: "audit-denied-1",
    });
    expect((no!.details as Json).upstreamLatencyMs).toBeNull();
  });

  it("stores the arguments when the tenant turned argument capture on", async () => {
    const t = await tenantWith({ captureArguments: true });
    const { key } = await seedKey(db, t.id);
    const agent = await new Agent(`${nodeB.url}/t/${t.slug}/mcp`, key).init();
    await agent.call("ops_echo", { text: "keep me" });
    const row = await until(() => db.prisma.auditEvent.findFirst({ where: { tenantId: t.id } }));
    expect((row.details as Json).args).toEqual({ text: "keep me" });
  });

  it("exposes tool calls by tenant, upstream, tool and outcome, and the node's gauges", async () => {
    const t = await tenantWith({}, [
      { id: "echo-ok", effect: "allow", tools: ["echo"] },
      { id: "no-slow", effect: "deny", tools: ["slow"] },
    ]);
    const { key } = await seedKey(db, t.id);
    const agent = await new Agent(`${nodeA.url}/t/${t.slug}/mcp`, key).init();
    await agent.call("ops_echo", { text: "1" });
    await agent.call("ops_echo", { text: "2" });
    await agent.call("ops_slow", { ms: 1 });
    await agent.call("ops_made_up", {});
    const m = await metricsOf(nodeA);
    const calls = (labels: Record<string, string>) =>
      sample(m, "gatehouse_gateway_tool_calls_total", { tenant: t.slug, upstream: "ops", ...labels });
    expect(calls({ tool: "echo", outcome: "ok" })).toBe(2);
    expect(calls({ tool: "slow", outcome: "denied" })).toBe(1);
    // A name the client made up never becomes a label.
    expect(sample(m, "gatehouse_gateway_tool_calls_total", { tenant: t.slug, outcome: "not_found" })).toBe(1);
    expect(m).not.toContain("made_up");
    expect(
      sample(m, "gatehouse_gateway_upstream_duration_seconds_count", { tenant: t.slug, upstream: "ops" }),
    ).toBe(2);
    expect(sample(m, "gatehouse_gateway_overhead_seconds_count", { tenant: t.slug })).toBe(4);
    expect(sample(m, "gatehouse_gateway_sessions_open", { tenant: t.slug })).toBe(1);
    const { configVersion } = await db.prisma.tenant.findUniqueOrThrow({ where: { id: t.id } });
    expect(sample(m, "gatehouse_gateway_config_version", { tenant: t.slug })).toBe(configVersion);
    expect(sample(m, "gatehouse_gateway_upstream_up", { tenant: t.slug, upstream: "ops" })).toBe(1);
    // initialize and the four calls; notifications/initialized was a 202.
    expect(
      sample(m, "gatehouse_gateway_requests_total", { tenant: t.slug, method: "POST", status: "200" }),
    ).toBe(5);
    expect(m).toMatch(/^gatehouse_gateway_bus_connected 1$/m);
    expect(m).toMatch(/^gatehouse_gateway_rate_limit_local_fallback 0$/m);
    expect(m).toMatch(/^gatehouse_gateway_ready 1$/m);
  });
});

describe("hard limits", () => {
  it("opens the circuit after repeated upstream failures, fails fast naming when to retry, then recovers", async () => {
    const node = await h.startOpsNode({ circuitFailureThreshold: 3, circuitCoolDownMs: 1500 });
    try {
      const t = await tenantWith();
      const { key } = await seedKey(db, t.id);
      const agent = await new Agent(`${node.url}/t/${t.slug}/mcp`, key).init();
      expect((await agent.call("ops_echo", { text: "warm" }))?.result).toBeTruthy();
      upstream.failing = true;
      for (let i = 0; i < 3; i++) {
        const r = await agent.call("ops_echo", { text: "x" });
        expect(r?.error?.data?.code).toBe("UPSTREAM_UNAVAILABLE");
        expect(r?.error?.message).toContain("HTTP 500");
      }
      const before = upstream.calls;
      const open = await agent.call("ops_echo", { text: "x" });
      expect(upstream.calls).toBe(before); // not sent
      expect(open?.error?.data).toMatchObject({
        code: "UPSTREAM_UNAVAILABLE",
        circuit: "open",
        upstream: "ops",
      });
      expect(Number(open?.error?.data?.retryAfterMs)).toBeGreaterThan(0);
      expect(Number(open?.error?.data?.retryAfterMs)).toBeLessThanOrEqual(1500);
      expect(open?.error?.message).toMatch(/circuit open\); retry in \d+ s/);
      const m = await metricsOf(node);
      expect(sample(m, "gatehouse_gateway_upstream_circuit_state", { tenant: t.slug, upstream: "ops" })).toBe(
        2,
      );
      expect(sample(m, "gatehouse_gateway_upstream_up", { tenant: t.slug, upstream: "ops" })).toBe(0);
      upstream.failing = false;
      await new Promise((r) => setTimeout(r, 1600));
      expect((await agent.call("ops_echo", { text: "back" }))?.result).toBeTruthy();
      const after = await metricsOf(node);
      expect(
        sample(after, "gatehouse_gateway_upstream_circuit_state", { tenant: t.slug, upstream: "ops" }),
      ).toBe(0);
    } finally {
      upstream.failing = false;
      await node.close();
    }
  });

  it("one caller whose calls time out opens only its own circuit, not the tenant's", async () => {
    const node = await h.startOpsNode({ circuitFailureThreshold: 2, circuitCoolDownMs: 60_000 });
    try {
      const t = await tenantWith();
      await db.prisma.upstream.updateMany({ where: { tenantId: t.id }, data: { timeoutMs: 200 } });
      const [k1, k2] = [await seedKey(db, t.id), await seedKey(db, t.id)];
      const noisy = await new Agent(`${node.url}/t/${t.slug}/mcp`, k1.key).init();
      const quiet = await new Agent(`${node.url}/t/${t.slug}/mcp`, k2.key).init();
      // The noisy caller asks for calls longer than the upstream's timeout, again and again.
      for (let i = 0; i < 2; i++) {
        const r = await noisy.call("ops_slow", { ms: 1000 });
        expect(r?.error?.data?.code).toBe("TIMEOUT");
      }
      const refused = await noisy.call("ops_echo", { text: "x" });
      expect(refused?.error?.data).toMatchObject({
        code: "UPSTREAM_UNAVAILABLE",
        circuit: "open",
        scope: "caller",
      });
      // Everyone else in the tenant is served as before, and the upstream's circuit stays closed.
      expect((await quiet.call("ops_echo", { text: "still here" }))?.result).toBeTruthy();
      const m = await metricsOf(node);
      expect(
        sample(m, "gatehouse_gateway_upstream_circuit_state", { tenant: t.slug, upstream: "ops" }) ?? 0,
      ).toBe(0);
    } finally {
      await node.close();
    }
  });

  it("caps the sessions a principal holds across nodes; a DELETE frees a slot", async () => {
    const t = await tenantWith();
    const { key } = await seedKey(db, t.id);
    const url = (n: OpsNode) => `${n.url}/t/${t.slug}/mcp`;
    const first = await new Agent(url(nodeA), key).init();
    await new Agent(url(nodeB), key).init();
    await new Agent(url(nodeA), key).init();
    const over = new Agent(url(nodeB), key);
    await expect(over.init()).rejects.toThrow(/HTTP 429/);
    expect(over.lastHeaders.get("retry-after")).toBe("60");
    const body = await over.post({
      jsonrpc: "2.0",
      id: 9,
      method: "initialize",
      params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "x", version: "1" } },
    });
    expect(body?.error?.data).toMatchObject({ code: "RATE_LIMITED", scope: "sessions", limit: 3 });
    expect(body?.error?.message).toContain("DELETE");
    // Another principal has its own cap.
    const other = await seedKey(db, t.id);
    await h.bump(t.id);
    await until(async () => nodeB.node.gateway.tenants.peek(t.id)?.keysById.has(other.id));
    await new Agent(url(nodeB), other.key).init();
    const del = await fetch(url(nodeB), {
      method: "DELETE",
      headers: { authorization: `Bearer ${key}`, "mcp-session-id": first.sessionId },
    });
    expect(del.status).toBe(204);
    await new Agent(url(nodeB), key).init();
  });

  it("holds the cap under concurrent initializes on both nodes", async () => {
    const t = await tenantWith();
    const { key } = await seedKey(db, t.id);
    const tries = await Promise.allSettled(
      [nodeA, nodeB, nodeA, nodeB, nodeA, nodeB, nodeA, nodeB].map((n) =>
        new Agent(`${n.url}/t/${t.slug}/mcp`, key).init(),
      ),
    );
    expect(tries.filter((r) => r.status === "fulfilled")).toHaveLength(3);
  });

  it("drains on close: /readyz says 503, in-flight calls finish, new work is refused, audit is flushed", async () => {
    const node = await h.startOpsNode({ drainTimeoutMs: 5000 });
    const t = await tenantWith();
    const { key } = await seedKey(db, t.id);
    const agent = await new Agent(`${node.url}/t/${t.slug}/mcp`, key).init();
    expect((await fetch(`${node.url}/readyz`)).status).toBe(200);
    const before = upstream.calls;
    const slow = agent.call("ops_slow", { ms: 800 }, { "x-request-id": "drain-slow" });
    await until(async () => upstream.calls > before);
    const closing = node.close();
    await new Promise((r) => setTimeout(r, 50));
    const ready = await fetch(`${node.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: "not ready", draining: true });
    const late = new Agent(`${node.url}/t/${t.slug}/mcp`, key);
    late.sessionId = agent.sessionId;
    const refused = await late.call("ops_echo", { text: "late" });
    expect(late.lastStatus).toBe(503);
    expect(refused?.error?.data?.code).toBe("SERVICE_UNAVAILABLE");
    expect((await slow)?.result).toMatchObject({ content: [{ type: "text", text: "echo:800" }] });
    await closing;
    // ops.close() wrote the last batch before returning: the row is there, no waiting.
    const row = await db.prisma.auditEvent.findFirst({ where: { tenantId: t.id, requestId: "drain-slow" } });
    expect(row).toMatchObject({ outcome: "ok", tool: "slow" });
    // The node left the registry.
    expect((await listLiveNodes(db.prisma)).map((n) => n.id)).not.toContain(node.nodeId);
  });
});

describe("request ids, tracing, node registry", () => {
  it("honours or generates x-request-id, returns it, and puts it on every log line of the request", async () => {
    const lines: Json[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        for (const l of String(chunk).split("\n")) if (l.trim()) lines.push(JSON.parse(l) as Json);
        cb();
      },
    });
    const node = await h.startOpsNode({}, { logger: pino({ level: "debug" }, sink) });
    try {
      const t = await tenantWith();
      const bad = await fetch(`${node.url}/t/${t.slug}/mcp`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          authorization: "Bearer mgw_nope",
          "x-request-id": "rid-42",
        },
        body: "{}",
      });
      expect(bad.status).toBe(401);
      expect(bad.headers.get("x-request-id")).toBe("rid-42");
      const mine = lines.filter((l) => l.requestId === "rid-42");
      expect(mine.map((l) => l.msg)).toContain("unauthenticated");
      // Without one (or with one that is not a plain token) the node makes one up.
      const gen = await fetch(`${node.url}/t/${t.slug}/mcp`, {
        method: "POST",
        headers: { "x-request-id": "no spaces allowed" },
      });
      expect(gen.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
      expect(lines.some((l) => l.requestId === gen.headers.get("x-request-id"))).toBe(true);
    } finally {
      await node.close();
    }
  });

  it("with OTEL_EXPORTER_OTLP_ENDPOINT: a span per call, the upstream call its child, traceparent sent upstream", async () => {
    const bodies: Json[] = [];
    const collector: Server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        if (req.url === "/v1/traces") bodies.push(JSON.parse(Buffer.concat(chunks).toString("utf8")) as Json);
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      });
    });
    await new Promise<void>((r) => collector.listen(0, "127.0.0.1", r));
    const endpoint = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
    const node = await h.startOpsNode({ otlpEndpoint: endpoint });
    try {
      const t = await tenantWith();
      const { key } = await seedKey(db, t.id);
      const agent = await new Agent(`${node.url}/t/${t.slug}/mcp`, key).init();
      const traceId = randomBytes(16).toString("hex");
      const parentId = randomBytes(8).toString("hex");
      const seen = upstream.callHeaders.length;
      const r = await agent.call(
        "ops_echo",
        { text: "traced" },
        { traceparent: `00-${traceId}-${parentId}-01` },
      );
      expect(r?.result).toBeTruthy();
      const sent = upstream.callHeaders.slice(seen).map((hd) => String(hd.traceparent ?? ""));
      expect(sent).toHaveLength(1);
      expect(sent[0]).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
      await node.close(); // flushes the span processor
      const spans = bodies.flatMap((b) =>
        ((b.resourceSpans as Json[]) ?? []).flatMap((rs) =>
          ((rs.scopeSpans as Json[]) ?? []).flatMap((ss) => (ss.spans as Json[]) ?? []),
        ),
      );
      const hex = (v: unknown) =>
        typeof v === "string" && /^[0-9a-f]*$/.test(v) ? v : Buffer.from(String(v), "base64").toString("hex");
      const call = spans.find((s) => s.name === "tools/call echo");
      const up = spans.find((s) => s.name === "upstream ops");
      expect(call, JSON.stringify(spans.map((s) => s.name))).toBeTruthy();
      expect(up).toBeTruthy();
      expect(hex(call?.traceId)).toBe(traceId);
      expect(hex(call?.parentSpanId)).toBe(parentId);
      expect(hex(up?.parentSpanId)).toBe(hex(call?.spanId));
      // The upstream saw the child span's context.
      expect(sent[0]).toContain(hex(up?.spanId));
    } finally {
      await node.close();
      await new Promise<void>((r) => collector.close(() => r()));
    }
  });

  it("heartbeats: both nodes are listed live with the config versions they applied", async () => {
    const t = await tenantWith();
    const { key } = await seedKey(db, t.id);
    await new Agent(`${nodeA.url}/t/${t.slug}/mcp`, key).init();
    await new Agent(`${nodeB.url}/t/${t.slug}/mcp`, key).init();
    const nodes = await until(async () => {
      const live = await listLiveNodes(db.prisma);
      const ours = live.filter((n) => n.id === nodeA.nodeId || n.id === nodeB.nodeId);
      return ours.length === 2 && ours.every((n) => n.configVersions[t.id] !== undefined) ? ours : null;
    });
    for (const n of nodes) expect(n.version).toMatch(/^\d+\.\d+\.\d+/);
  });
});
