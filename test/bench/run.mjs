#!/usr/bin/env node
// Gatehouse benchmark (issue 4, item 7). One command, one run, everything on 127.0.0.1:
//
//   node test/bench/run.mjs [--duration 10] [--rates 200,1000] [--concurrency 32] [--sessions 8]
//                           [--only a,b,c,c-stdio,d] [--skip-sections memory,propagation,startup]
//                           [--idle-sessions 10000] [--tenants 10000] [--no-write] [--profile DIR]
//
// Columns, all calling the same `echo` tool of test/bench/fixture-upstream.mjs:
//   (a)       the fixture over streamable HTTP, called directly
//   (b)       the same through bare-proxy.mjs (node:http + keep-alive agent): the floor for any proxy
//   (c)       the same through a gateway node: API key auth + policy + rate limit + audit
//   (c-stdio) the gateway in front of the fixture over stdio (GATEWAY_ALLOW_STDIO=true)
//   (d)       `mcp-proxy` (npm) in front of the fixture over stdio
// (c) needs `npm run build` (apps/api/dist, apps/gateway/dist), Postgres and Redis; when the gateway
// cannot start, the gateway columns and sections are skipped with the reason.
//
// Sections: 1 tool-call throughput and latency; 2 gateway memory per idle session; 3 API write →
// applied on every node (two nodes); 4 node start time with N tenants in the database.
// Writes test/bench/RESULTS.md (unless --no-write). Not a test: nothing is asserted.
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { callTool, fixedRate, McpTarget, openSession, openSessions, saturate } from "./loadgen.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");
const argv = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : fallback;
};
const cfg = {
  durationMs: Number(opt("duration", "10")) * 1000,
  warmupMs: Number(opt("warmup", "2")) * 1000,
  rates: opt("rates", "200,1000").split(",").map(Number),
  concurrency: Number(opt("concurrency", "32")),
  sessions: Number(opt("sessions", "8")),
  only: new Set(opt("only", "a,b,c,c-stdio,d").split(",")),
  skipSections: new Set(opt("skip-sections", "").split(",").filter(Boolean)),
  idleSessions: Number(opt("idle-sessions", "10000")),
  tenants: Number(opt("tenants", "10000")),
  write: !argv.includes("--no-write"),
  /** Write a V8 CPU profile of each gateway node here (summarise with profile-summary.mjs). */
  profileDir: opt("profile", ""),
};
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const FIXTURE = resolve(here, "fixture-upstream.mjs");

// ---------------------------------------------------------------- processes

const children = new Set();

/** Spawn a child; `ready` resolves with the port from a `listening <port>` line when `waitListening`. */
function start(name, cmd, args, { env = {}, waitListening = false } = {}) {
  const child = spawn(cmd, args, {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  let log = "";
  const keep = (c) => {
    log = (log + c).slice(-20_000);
  };
  child.stdout.setEncoding("utf8");
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", keep);
  const ready = new Promise((resolveReady, reject) => {
    child.stdout.on("data", (c) => {
      keep(c);
      const m = /listening (\d+)/.exec(log);
      if (waitListening && m) resolveReady(Number(m[1]));
    });
    child.once("exit", (code, signal) => {
      children.delete(child);
      reject(new Error(`${name} exited (code ${code}, signal ${signal}):\n${log.slice(-3000)}`));
    });
    if (!waitListening) resolveReady(0);
  });
  ready.catch(() => {});
  return { name, child, ready, log: () => log };
}

async function stop(proc) {
  if (!proc || proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  const exited = new Promise((r) => proc.child.once("exit", r));
  proc.child.kill("SIGTERM");
  const timer = setTimeout(() => proc.child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

function killAll() {
  for (const c of children) c.kill("SIGKILL");
}
process.on("exit", killAll);
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });
}

async function freePort() {
  const server = net.createServer();
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what, fn, timeoutMs = 30_000, proc = null, intervalMs = 100) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    if (proc && proc.child.exitCode !== null) break;
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await sleep(intervalMs);
  }
  throw new Error(
    `timed out waiting for ${what}${last ? `: ${last.message}` : ""}${proc ? `\n${proc.log().slice(-3000)}` : ""}`,
  );
}

/** CPU seconds (user+sys) of a process and its descendants, from /proc. */
function cpuSeconds(pid) {
  const tick = 100; // USER_HZ on Linux
  let total = 0;
  const visit = (p) => {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      total += (Number(fields[11]) + Number(fields[12])) / tick;
      for (const t of readdirSync(`/proc/${p}/task`)) {
        const kids = readFileSync(`/proc/${p}/task/${t}/children`, "utf8").trim();
        for (const k of kids ? kids.split(" ") : []) visit(k);
      }
    } catch {
      // the process is gone
    }
  };
  visit(pid);
  return total;
}

function rssBytes(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN; // the process is gone
  }
}

/** Throws with the tail of its log when a process under test has died. */
function assertAlive(proc) {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
    throw new Error(
      `${proc.name} died (code ${proc.child.exitCode}, signal ${proc.child.signalCode}); last log lines:\n${proc.log().slice(-2500)}`,
    );
  }
}

// ---------------------------------------------------------------- the gateway stack (column c)

/** API + `nodes` gateway nodes on a fresh database; null (with `reason`) when it cannot start. */
async function startGatewayStack({ nodes = 1, allowStdio = true } = {}) {
  for (const entry of ["apps/api/dist/main.js", "apps/gateway/dist/main.js"]) {
    if (!existsSync(resolve(root, entry)))
      return { reason: `${entry} is missing (run \`npm run build\` first)` };
  }
  let db;
  const procs = [];
  try {
    const testing = await import("@gatehouse/db/testing");
    db = await testing.createTestDatabase();
    const adminToken = `adm_${randomBytes(24).toString("hex")}`;
    const secretsKey = randomBytes(32).toString("hex");
    const prefix = `gatehouse:bench:${randomBytes(4).toString("hex")}:`;
    const gwPorts = [];
    for (let i = 0; i < nodes; i++) gwPorts.push(await freePort());
    const apiPort = await freePort();
    const publicUrl = `http://127.0.0.1:${gwPorts[0]}`;
    const common = {
      DATABASE_URL: db.url,
      REDIS_URL,
      REDIS_KEY_PREFIX: prefix,
      SECRETS_KEY: secretsKey,
      PUBLIC_GATEWAY_URL: publicUrl,
      LOG_LEVEL: "warn",
      NODE_ENV: "production",
    };
    const api = start("api", process.execPath, [resolve(root, "apps/api/dist/main.js")], {
      env: { ...common, API_PORT: String(apiPort), API_HOST: "127.0.0.1", ADMIN_TOKEN: adminToken },
    });
    procs.push(api);
    const apiUrl = `http://127.0.0.1:${apiPort}`;
    await waitFor("the API /readyz", async () => (await fetch(`${apiUrl}/readyz`)).ok, 60_000, api);
    const gateways = [];
    for (let i = 0; i < nodes; i++) {
      const gw = await startGatewayNode({ ...common }, gwPorts[i], `bench-${i}`, allowStdio);
      procs.push(gw.proc);
      gateways.push(gw);
    }
    const admin = async (method, path, body) => {
      const res = await fetch(`${apiUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${adminToken}`,
          ...(body ? { "content-type": "application/json" } : {}),
        },
        body: body ? JSON.stringify(body) : undefined,
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`${method} ${path} → ${res.status}: ${text.slice(0, 500)}`);
      return text ? JSON.parse(text) : undefined;
    };
    const stack = {
      db,
      api,
      apiUrl,
      gateways,
      admin,
      common,
      async stop() {
        for (const p of procs.reverse()) await stop(p);
        for (const g of gateways) await stop(g.proc);
        await db.drop().catch(() => {});
      },
    };
    return { stack };
  } catch (err) {
    for (const p of procs.reverse()) await stop(p);
    await db?.drop().catch(() => {});
    return { reason: err.message.split("\n").slice(0, 12).join("\n") };
  }
}

async function startGatewayNode(env, port, nodeId, allowStdio = true) {
  // /metrics is served on a port of its own (never the agents' one).
  const metricsPort = await freePort();
  const profile = cfg.profileDir ? ["--cpu-prof", "--cpu-prof-dir", resolve(cfg.profileDir)] : [];
  const proc = start(
    `gateway ${nodeId}`,
    process.execPath,
    [...profile, resolve(root, "apps/gateway/dist/main.js")],
    {
      env: {
        ...env,
        GATEWAY_PORT: String(port),
        GATEWAY_METRICS_PORT: String(metricsPort),
        GATEWAY_HOST: "127.0.0.1",
        GATEWAY_NODE_ID: nodeId,
        // A stdio upstream is a process per agent session; on a busy 2-core box spawning 8 at once
        // can pass the 3 s default handshake limit.
        GATEWAY_UPSTREAM_CONNECT_TIMEOUT_MS: "15000",
        // The memory section opens 10,000 sessions with one API key: lift the per-principal cap.
        GATEWAY_MAX_SESSIONS_PER_PRINCIPAL: "0",
        ...(allowStdio ? { GATEWAY_ALLOW_STDIO: "true" } : {}),
      },
    },
  );
  const url = `http://127.0.0.1:${port}`;
  const t0 = performance.now();
  await waitFor(`gateway ${nodeId} /readyz`, async () => (await fetch(`${url}/readyz`)).ok, 60_000, proc);
  return { proc, url, port, metricsUrl: `http://127.0.0.1:${metricsPort}`, readyMs: performance.now() - t0 };
}

/** A tenant with one upstream, an API key (with a rate limit) and an allow-echo policy. */
async function provisionTenant(stack, { slug, upstream }) {
  await stack.admin("POST", "/v1/tenants", { slug, name: `Bench ${slug}` });
  await stack.admin("POST", `/v1/tenants/${slug}/upstreams`, upstream);
  const key = await stack.admin("POST", `/v1/tenants/${slug}/api-keys`, {
    name: "bench",
    agent: "bench",
    rateLimit: { perMinute: 1_000_000 },
  });
  await stack.admin("PUT", `/v1/tenants/${slug}/policy`, {
    defaultEffect: "deny",
    rules: [
      {
        id: "bench-echo",
        effect: "allow",
        principals: ["agent:bench"],
        upstreams: [upstream.name],
        tools: ["echo"],
      },
    ],
  });
  return key.key;
}

/** Says whether the node under test really audited and rate-limited (the ops modules wired in). */
async function checkGatewayOps(stack, gw) {
  const notes = [];
  const pg = (await import("pg")).default;
  const client = new pg.Client({ connectionString: stack.db.url });
  await client.connect();
  try {
    await sleep(1500); // let the audit writer's last batch land
    const { rows } = await client.query(
      `SELECT count(*)::int AS n FROM "AuditEvent" WHERE kind = 'tool_call'`,
    );
    notes.push(
      rows[0].n > 0
        ? `(c) audit on: ${rows[0].n} tool-call audit events were written during the gateway runs.`
        : "(c) audit NOT on yet: no tool-call audit events were written (the gateway node does not wire the ops audit writer yet).",
    );
  } finally {
    await client.end();
  }
  const metrics = await fetch(`${gw.metricsUrl}/metrics`)
    .then((r) => r.text())
    .catch(() => "");
  notes.push(
    metrics.includes("gatehouse_gateway_rate_limit_local_fallback")
      ? `(c) rate limit on: every call takes from the API key's bucket (limit 1,000,000/min, never reached; a bucket that large is leased from Redis 100 tokens at a time); Redis fallback gauge ${/^gatehouse_gateway_rate_limit_local_fallback (\S+)$/m.exec(metrics)?.[1] ?? "?"}.`
      : "(c) rate limit NOT on yet: the node does not export the ops rate-limit metrics (noop limiter).",
  );
  const calls = [...metrics.matchAll(/^gatehouse_gateway_tool_calls_total\{([^}]*)\} (\S+)$/gm)]
    .map((m) => `${m[1]}: ${m[2]}`)
    .join("; ");
  if (calls) notes.push(`(c) the node's tool-call counters at the end: ${calls}.`);
  return notes;
}

// ---------------------------------------------------------------- section 1: throughput and latency

async function measureTarget(label, target, chainPids) {
  const sessions = await openSessions(target, cfg.sessions);
  // Prime every session (lazily opened upstream sessions, JIT) so no figure starts with a backlog.
  await Promise.all(
    sessions.map(async (session) => {
      let failures = 0;
      for (let i = 0; i < 50; i++) {
        const r = await callTool(target, session);
        if (r !== true && ++failures > 3) throw r;
      }
    }),
  );
  const rows = [];
  for (const rate of cfg.rates) {
    const r = await fixedRate(target, sessions, { rate, durationMs: cfg.durationMs, warmupMs: cfg.warmupMs });
    rows.push({ mode: `${rate}/s`, ...r });
    process.stdout.write(`  ${label} @${rate}/s: ${fmtRow(r)}\n`);
  }
  const cpu0 = chainPids.reduce((s, p) => s + cpuSeconds(p), 0);
  const front0 = cpuSeconds(chainPids[0]);
  const sat = await saturate(target, sessions, {
    concurrency: cfg.concurrency,
    durationMs: cfg.durationMs,
    warmupMs: cfg.warmupMs,
  });
  const cpu1 = chainPids.reduce((s, p) => s + cpuSeconds(p), 0);
  const front1 = cpuSeconds(chainPids[0]);
  // CPU of the serving chain per call during saturation (warm-up included in both counts).
  const calls = sat.ok + sat.errors;
  sat.frontCpuUsPerCall = calls
    ? ((front1 - front0) * 1e6) / (calls * (1 + cfg.warmupMs / cfg.durationMs))
    : Number.NaN;
  sat.cpuUsPerCall = calls
    ? ((cpu1 - cpu0) * 1e6) / (calls * (1 + cfg.warmupMs / cfg.durationMs))
    : Number.NaN;
  rows.push({ mode: `saturation (${cfg.concurrency} in flight)`, ...sat });
  process.stdout.write(`  ${label} saturation: ${fmtRow(sat)}\n`);
  return rows;
}

const ms = (v) => (Number.isFinite(v) ? (v < 10 ? v.toFixed(2) : v.toFixed(1)) : "—");
const signed = (v) => (Number.isFinite(v) && v >= 0 ? `+${ms(v)}` : ms(v));
function fmtRow(r) {
  return `${r.throughput.toFixed(0)} calls/s, p50 ${ms(r.p50)} ms, p99 ${ms(r.p99)} ms, errors ${r.errors}${
    r.skipped ? `, not sent ${r.skipped}` : ""
  }${r.firstError ? ` (${r.firstError.slice(0, 120)})` : ""}`;
}

async function sectionThroughput(report) {
  const results = {};
  const skipped = {};
  const fixture = start("fixture (http)", process.execPath, [FIXTURE, "--port", "0"], {
    waitListening: true,
  });
  const fixturePort = await fixture.ready;
  const fixtureUrl = `http://127.0.0.1:${fixturePort}/mcp`;
  // The fixture must not grow over a run (it once leaked ~9 KB per call: see fixture-upstream.mjs),
  // or every column after the first measures a slower, swapping upstream.
  const fixtureRss = [rssBytes(fixture.child.pid)];

  const run = async (key, label, target, pids, proc = null) => {
    process.stdout.write(`(${key}) ${label}\n`);
    try {
      results[key] = await measureTarget(key, target, pids);
      if (proc) assertAlive(proc);
    } catch (err) {
      delete results[key];
      skipped[key] = err.message;
      process.stdout.write(`  skipped: ${err.message}\n`);
    } finally {
      target.close();
    }
    fixtureRss.push(rssBytes(fixture.child.pid));
    await sleep(1000);
  };

  if (cfg.only.has("a")) {
    await run("a", "fixture, direct", new McpTarget({ url: fixtureUrl }), [fixture.child.pid]);
  }
  if (cfg.only.has("b")) {
    const proxy = start(
      "bare proxy",
      process.execPath,
      [resolve(here, "bare-proxy.mjs"), "--target", `http://127.0.0.1:${fixturePort}`],
      {
        waitListening: true,
      },
    );
    const port = await proxy.ready;
    await run("b", "bare node:http proxy → fixture", new McpTarget({ url: `http://127.0.0.1:${port}/mcp` }), [
      proxy.child.pid,
      fixture.child.pid,
    ]);
    await stop(proxy);
  }
  if (cfg.only.has("c") || cfg.only.has("c-stdio")) {
    const { stack, reason } = await startGatewayStack({ nodes: 1 });
    if (!stack) {
      for (const k of ["c", "c-stdio"]) if (cfg.only.has(k)) skipped[k] = `gateway did not start: ${reason}`;
      process.stdout.write(`(c) skipped: the gateway did not start:\n${reason}\n`);
    } else {
      const gw = stack.gateways[0];
      try {
        if (cfg.only.has("c")) {
          const key = await provisionTenant(stack, {
            slug: "bench-http",
            upstream: { name: "bench", transport: "streamable-http", url: fixtureUrl },
          });
          await run(
            "c",
            "gateway (key auth + policy + rate limit + audit) → fixture over HTTP",
            new McpTarget({
              url: `${gw.url}/t/bench-http/mcp`,
              headers: { authorization: `Bearer ${key}` },
              tool: "bench_echo",
            }),
            [gw.proc.child.pid, fixture.child.pid],
            gw.proc,
          );
        }
        if (cfg.only.has("c-stdio")) {
          const key = await provisionTenant(stack, {
            slug: "bench-stdio",
            upstream: {
              name: "bench",
              transport: "stdio",
              command: process.execPath,
              args: [FIXTURE, "--stdio"],
            },
          });
          await run(
            "c-stdio",
            "gateway → fixture over stdio",
            new McpTarget({
              url: `${gw.url}/t/bench-stdio/mcp`,
              headers: { authorization: `Bearer ${key}` },
              tool: "bench_echo",
            }),
            [gw.proc.child.pid],
            gw.proc,
          );
        }
        report.notes.push(...(await checkGatewayOps(stack, gw)));
      } catch (err) {
        skipped.c ??= err.message;
        process.stdout.write(`(c) failed: ${err.message}\n`);
      } finally {
        await stack.stop();
      }
    }
  }
  if (cfg.only.has("d")) {
    const port = await freePort();
    const mp = start("mcp-proxy", resolve(root, "node_modules/.bin/mcp-proxy"), [
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "--server",
      "stream",
      "--",
      process.execPath,
      FIXTURE,
      "--stdio",
    ]);
    const target = new McpTarget({ url: `http://127.0.0.1:${port}/mcp` });
    try {
      await waitFor("mcp-proxy", async () => Boolean(await openSession(target)), 30_000, mp);
      await run("d", "mcp-proxy (npm) → fixture over stdio", target, [mp.child.pid]);
    } catch (err) {
      skipped.d = err.message;
      process.stdout.write(`(d) skipped: ${err.message}\n`);
    }
    await stop(mp);
  }
  await stop(fixture);
  const fixtureNote = `fixture (http) RSS after start and after each column: ${fixtureRss.map((b) => mb(b)).join(" → ")} MB`;
  process.stdout.write(`${fixtureNote}\n`);
  report.notes.push(fixtureNote);
  report.throughput = { results, skipped };
}

// ---------------------------------------------------------------- section 2: memory per idle session

async function sectionIdleMemory(report) {
  const n = cfg.idleSessions;
  const { stack, reason } = await startGatewayStack({ nodes: 1, allowStdio: false });
  if (!stack) {
    report.memory = { skipped: `gateway did not start: ${reason}` };
    return;
  }
  const fixture = start("fixture (http)", process.execPath, [FIXTURE, "--port", "0"], {
    waitListening: true,
  });
  try {
    const port = await fixture.ready;
    const gw = stack.gateways[0];
    const key = await provisionTenant(stack, {
      slug: "bench-idle",
      upstream: { name: "bench", transport: "streamable-http", url: `http://127.0.0.1:${port}/mcp` },
    });
    const target = new McpTarget({
      url: `${gw.url}/t/bench-idle/mcp`,
      headers: { authorization: `Bearer ${key}` },
      tool: "bench_echo",
      maxSockets: 16,
    });
    // Warm the node (tenant snapshot, code paths, heap growth), then open two batches of n/2 sessions
    // and take the slope: garbage from opening sessions then weighs the same in both samples.
    const half = Math.max(1, Math.floor(n / 2));
    const openBatch = async (count) => {
      let opened = 0;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (opened < count) {
            opened++;
            await openSession(target);
          }
        }),
      );
    };
    const sample = async () => {
      await sleep(3000);
      const text = await fetch(`${gw.metricsUrl}/metrics`)
        .then((r) => r.text())
        .catch(() => "");
      const heap = /^nodejs_heap_size_used_bytes(?:\{[^}]*\})? (\S+)$/m.exec(text);
      return { rss: rssBytes(gw.proc.child.pid), heapUsed: heap ? Number(heap[1]) : Number.NaN };
    };
    await openBatch(Math.min(1000, half));
    const s0 = await sample();
    const t0 = performance.now();
    await openBatch(half);
    const s1 = await sample();
    await openBatch(half);
    const openMs = performance.now() - t0;
    const s2 = await sample();
    // Sessions that made one tools/call hold an upstream session as well: a smaller third batch.
    const active = Math.min(1000, half);
    let made = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (made < active) {
          made++;
          const session = await openSession(target);
          const r = await callTool(target, session);
          if (r !== true) throw r;
        }
      }),
    );
    const s3 = await sample();
    target.close();
    // In distributed mode sessions live in Redis: the size of this run's keys there, sampled.
    const redisPerSession = await redisBytesPerKey(
      stack.common.REDIS_KEY_PREFIX,
      2 * half + Math.min(1000, half),
    );
    report.memory = {
      sessions: 2 * half,
      samples: [s0, s1, s2, s3],
      active,
      activeRssPerSession: (s3.rss - s2.rss) / active,
      activeHeapPerSession: (s3.heapUsed - s2.heapUsed) / active,
      rssPerSession: (s2.rss - s0.rss) / (2 * half),
      heapPerSession: (s2.heapUsed - s0.heapUsed) / (2 * half),
      redisPerSession,
      openMs,
    };
    process.stdout.write(
      `memory: ${2 * half} idle sessions, RSS ${mb(s0.rss)} → ${mb(s1.rss)} → ${mb(s2.rss)} MB (${kb(report.memory.rssPerSession)} KB/session), heap used ${kb(report.memory.heapPerSession)} KB/session, Redis ${kb(redisPerSession.bytesPerSession)} KB/session\n`,
    );
  } catch (err) {
    report.memory = { skipped: err.message };
  } finally {
    await stop(fixture);
    await stack.stop();
  }
}

/** Keys under `prefix` in Redis and their sampled MEMORY USAGE, per session opened. */
async function redisBytesPerKey(prefix, sessions) {
  const { Redis } = await import("ioredis");
  const redis = new Redis(REDIS_URL);
  try {
    let cursor = "0";
    const keys = [];
    do {
      const [next, batch] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== "0");
    const step = Math.max(1, Math.floor(keys.length / 200));
    const sample = keys.filter((_, i) => i % step === 0).slice(0, 200);
    let bytes = 0;
    for (const k of sample) bytes += Number((await redis.memory("USAGE", k)) ?? 0);
    const total = sample.length ? (bytes / sample.length) * keys.length : 0;
    return { keys: keys.length, totalBytes: total, bytesPerSession: total / sessions };
  } finally {
    redis.disconnect();
  }
}

// ---------------------------------------------------------------- section 3: propagation

async function sectionPropagation(report) {
  // API write → in force on every node. A policy flip (allow echo ↔ deny echo) is written through
  // the API; both nodes are polled with tools/call until both answer the new way.
  const writes = 100;
  const PROPAGATION_WARMUP = 5;
  const { stack, reason } = await startGatewayStack({ nodes: 2, allowStdio: false });
  if (!stack) {
    report.propagation = { skipped: `gateway did not start: ${reason}` };
    return;
  }
  const fixture = start("fixture (http)", process.execPath, [FIXTURE, "--port", "0"], {
    waitListening: true,
  });
  try {
    const port = await fixture.ready;
    const key = await provisionTenant(stack, {
      slug: "bench-prop",
      upstream: { name: "bench", transport: "streamable-http", url: `http://127.0.0.1:${port}/mcp` },
    });
    const nodes = await Promise.all(
      stack.gateways.map(async (gw) => {
        const target = new McpTarget({
          url: `${gw.url}/t/bench-prop/mcp`,
          headers: { authorization: `Bearer ${key}` },
          tool: "bench_echo",
        });
        return { target, session: await openSession(target) };
      }),
    );
    const total = [];
    const afterAnswer = [];
    let allow = true;
    // A few writes first, not counted: the first reloads of a process compile query plans and JIT
    // the path (the other sections warm up before measuring too).
    for (let i = -PROPAGATION_WARMUP; i < writes; i++) {
      allow = !allow;
      const t0 = performance.now();
      await stack.admin("PUT", "/v1/tenants/bench-prop/policy", {
        defaultEffect: "deny",
        rules: [
          {
            id: "flip",
            effect: allow ? "allow" : "deny",
            principals: ["agent:bench"],
            upstreams: ["bench"],
            tools: ["echo"],
          },
        ],
      });
      const answered = performance.now();
      await Promise.all(
        nodes.map(({ target, session }) =>
          waitFor(
            "the policy change",
            async () => {
              const allowed = (await callTool(target, session)) === true;
              return allowed === allow;
            },
            5000,
            null,
            2,
          ),
        ),
      );
      const done = performance.now();
      if (i < 0) continue;
      total.push(done - t0);
      afterAnswer.push(done - answered);
    }
    for (const n of nodes) n.target.close();
    const pct = (arr, p) => {
      const sorted = [...arr].sort((a, b) => a - b);
      return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
    };
    report.propagation = {
      writes,
      p50: pct(total, 0.5),
      p99: pct(total, 0.99),
      max: pct(total, 1),
      afterAnswerP50: pct(afterAnswer, 0.5),
      afterAnswerP99: pct(afterAnswer, 0.99),
    };
    process.stdout.write(
      `propagation: p50 ${ms(report.propagation.p50)} ms, p99 ${ms(report.propagation.p99)} ms\n`,
    );
  } catch (err) {
    report.propagation = { skipped: err.message };
  } finally {
    await stop(fixture);
    await stack.stop();
  }
}

// ---------------------------------------------------------------- section 4: start time with N tenants

async function sectionStartup(report) {
  const n = cfg.tenants;
  const { stack, reason } = await startGatewayStack({ nodes: 1, allowStdio: false });
  if (!stack) {
    report.startup = { skipped: `gateway did not start: ${reason}` };
    return;
  }
  try {
    // Tenants go straight into the database (the API would take minutes for 10,000): one SQL insert.
    const pg = (await import("pg")).default;
    const client = new pg.Client({ connectionString: stack.db.url });
    await client.connect();
    await client.query(
      `INSERT INTO "Tenant" (id, slug, name, "updatedAt")
       SELECT gen_random_uuid(), 'bulk-' || g, 'Bulk ' || g, now() FROM generate_series(1, $1) AS g`,
      [n],
    );
    await client.end();
    const port = await freePort();
    const t0 = performance.now();
    const gw = await startGatewayNode(stack.common, port, "bench-startup", false);
    report.startup = { tenants: n, readyMs: performance.now() - t0 };
    await stop(gw.proc);
    process.stdout.write(`startup: ${n} tenants, /readyz after ${ms(report.startup.readyMs)} ms\n`);
  } catch (err) {
    report.startup = { skipped: err.message };
  } finally {
    await stack.stop();
  }
}

// ---------------------------------------------------------------- report

const mb = (b) => (b / 1024 / 1024).toFixed(1);
const kb = (b) => (b / 1024).toFixed(1);

const COLUMNS = [
  ["a", "(a) direct"],
  ["b", "(b) bare proxy"],
  ["c", "(c) gateway"],
  ["c-stdio", "(c) gateway→stdio"],
  ["d", "(d) mcp-proxy→stdio"],
];

function throughputTable(t) {
  const cols = COLUMNS.filter(([k]) => cfg.only.has(k));
  const modes = [...cfg.rates.map((r) => `${r}/s`), `saturation (${cfg.concurrency} in flight)`];
  const lines = [
    `| load | figure | ${cols.map(([, l]) => l).join(" | ")} |`,
    `|---|---|${cols.map(() => "---:").join("|")}|`,
  ];
  for (const mode of modes) {
    const get = (k) => t.results[k]?.find((r) => r.mode === mode);
    const figures = [
      ["calls/s", (r) => r.throughput.toFixed(0)],
      ["p50 ms", (r) => ms(r.p50)],
      ["p99 ms", (r) => ms(r.p99)],
      ["errors + not sent", (r) => String(r.errors + (r.skipped ?? 0))],
    ];
    if (mode.startsWith("saturation")) {
      figures.push(["CPU µs/call", (r) => r.cpuUsPerCall.toFixed(0)]);
      figures.push(["of which the front process", (r) => r.frontCpuUsPerCall.toFixed(0)]);
    }
    for (const [name, f] of figures) {
      lines.push(
        `| ${mode} | ${name} | ${cols.map(([k]) => (get(k) ? f(get(k)) : "skipped")).join(" | ")} |`,
      );
    }
  }
  return lines.join("\n");
}

function deltas(t) {
  const at = (k, mode) => t.results[k]?.find((r) => r.mode === mode);
  const out = [];
  const top = `${Math.max(...cfg.rates)}/s`;
  const a = at("a", top);
  const c = at("c", top);
  if (a && c)
    out.push(
      `- added latency of the gateway vs direct at ${top}: p50 ${signed(c.p50 - a.p50)} ms, p99 ${signed(c.p99 - a.p99)} ms (targets ≤ 0.5 / ≤ 2 ms)`,
    );
  const sat = `saturation (${cfg.concurrency} in flight)`;
  const b = at("b", sat);
  const cs = at("c", sat);
  if (b && cs)
    out.push(
      `- gateway saturation throughput = ${((100 * cs.throughput) / b.throughput).toFixed(0)}% of the bare proxy (target ≥ 80%)`,
    );
  const b2 = at("b", top);
  if (a && b2)
    out.push(
      `- bare proxy vs direct at ${top}: p50 ${signed(b2.p50 - a.p50)} ms, p99 ${signed(b2.p99 - a.p99)} ms`,
    );
  return out.join("\n");
}

function markdown(report) {
  const t = report.throughput;
  const s = [];
  s.push("# Benchmark results", "");
  s.push(
    `Run ${report.startedAt} → ${report.finishedAt}, one run of \`node test/bench/run.mjs ${argv.join(" ")}\`.`,
    "",
  );
  s.push(
    `Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, ${mb(os.totalmem())} MB, Node ${process.version}, ${os.platform()} ${os.release()}.`,
    `Load average (1 min) at start ${report.loadStart.toFixed(2)}, at end ${report.loadEnd.toFixed(2)}: everything (load generator, proxies, upstream, gateway, Postgres, Redis) shares these cores, so figures are comparable within one run, not across machines.`,
    "",
  );
  s.push("## 1. tools/call throughput and latency", "");
  s.push(
    `Each column calls the \`echo\` tool of \`test/bench/fixture-upstream.mjs\` over ${cfg.sessions} MCP sessions (initialize + notifications/initialized once each, then \`Mcp-Session-Id\` and \`MCP-Protocol-Version\` on every call; every answer checked). Fixed rates are open loop: calls are scheduled at the rate whatever the target does and latency runs from the scheduled time. ${cfg.durationMs / 1000} s measured after ${cfg.warmupMs / 1000} s warm-up per figure. "CPU µs/call" is the CPU time of the serving processes (proxy/gateway + upstream, children included) per call at saturation; "of which the front process" is the proxy's or gateway's alone (for (a), the fixture's).`,
    "",
  );
  if (t) {
    s.push(throughputTable(t), "");
    const d = deltas(t);
    if (d) s.push(d, "");
    for (const [k, why] of Object.entries(t.skipped)) {
      const [first, ...rest] = why.split("\n");
      s.push(`- (${k}) skipped: ${first}`);
      if (rest.length) s.push("", "  ```", ...rest.slice(-30).map((l) => `  ${l}`), "  ```", "");
    }
    if (Object.keys(t.skipped).length) s.push("");
  } else s.push("Not run.", "");
  const section = (title, r, fmt) => {
    s.push(`## ${title}`, "");
    if (!r) s.push("Not run (--skip-sections).", "");
    else if (r.skipped) s.push(`Skipped: ${r.skipped.split("\n")[0]}`, "");
    else s.push(fmt(r), "");
  };
  section("2. Gateway memory per idle session", report.memory, (r) => {
    const [s0, s1, s2] = r.samples;
    return [
      `${r.sessions} sessions opened (initialize + notifications/initialized) in two equal batches after a warm-up batch, and left idle; the node is sampled 3 s after each batch:`,
      "",
      "| | before | after batch 1 | after batch 2 | per session |",
      "|---|---:|---:|---:|---:|",
      `| gateway RSS | ${mb(s0.rss)} MB | ${mb(s1.rss)} MB | ${mb(s2.rss)} MB | **${kb(r.rssPerSession)} KB** |`,
      `| gateway V8 heap used | ${mb(s0.heapUsed)} MB | ${mb(s1.heapUsed)} MB | ${mb(s2.heapUsed)} MB | ${kb(r.heapPerSession)} KB |`,
      `| Redis (this run's ${r.redisPerSession.keys} keys, MEMORY USAGE sampled) | | | ${mb(r.redisPerSession.totalBytes)} MB | ${kb(r.redisPerSession.bytesPerSession)} KB |`,
      "",
      `Then ${r.active} more sessions that each made one tools/call (so each also holds an upstream session on the node) and went idle: RSS ${mb(s2.rss)} → ${mb(r.samples[3].rss)} MB = **${kb(r.activeRssPerSession)} KB** per session, heap ${kb(r.activeHeapPerSession)} KB.`,
      "",
      `Target ≤ 10 KB per idle session on the node. RSS and heap include garbage not yet collected, so a sample can read lower than the one before; the slope over both batches is the figure. Opening them took ${(r.openMs / 1000).toFixed(1)} s.`,
    ].join("\n");
  });
  section(
    "3. API write → applied on every node",
    report.propagation,
    (r) =>
      `${r.writes} policy writes through the API (allow ↔ deny of one tool), after 5 that are not counted, each timed from the request to the API until both of two gateway nodes answer the new way: p50 **${ms(r.p50)} ms**, p99 **${ms(r.p99)} ms**, max ${ms(r.max)} ms (target p99 ≤ 100 ms). Counted from the API's answer instead: p50 ${ms(r.afterAnswerP50)} ms, p99 ${ms(r.afterAnswerP99)} ms. Each node is probed with back-to-back tools/call; a probe that still sees the old policy waits 2 ms before the next, so figures are upper bounds by one probe round trip + 2 ms.`,
  );
  section(
    `4. Node start time with ${cfg.tenants} tenants`,
    report.startup,
    (r) =>
      `${r.tenants} tenants in the database: a gateway node answers \`/readyz\` **${ms(r.readyMs)} ms** after spawn (target ≤ 2 s), including Node start-up.`,
  );
  s.push("## Targets", "", "| target | measured | met |", "|---|---|:---:|");
  for (const t of targets(report))
    s.push(`| ${t.what} | ${t.measured} | ${t.met === null ? "—" : t.met ? "yes" : "no"} |`);
  s.push("");
  s.push("## Reproduce", "");
  s.push(
    "```sh",
    "npm ci && npm run build          # the gateway columns and sections need apps/*/dist",
    "# Postgres on 127.0.0.1:5432 (user postgres, trust) and Redis on 127.0.0.1:6379",
    `node test/bench/run.mjs ${argv.join(" ")}`.trim(),
    "# one column or one target by hand:",
    "node test/bench/fixture-upstream.mjs --port 0            # prints: listening <port>",
    "node test/bench/bare-proxy.mjs --target http://127.0.0.1:<port>",
    "node test/bench/loadgen.mjs --url http://127.0.0.1:<port>/mcp --rate 1000 --duration 10",
    "node test/bench/loadgen.mjs --url http://127.0.0.1:<port>/mcp --saturate 32 --duration 10",
    "npx mcp-proxy --host 127.0.0.1 --port 9000 --server stream -- node test/bench/fixture-upstream.mjs --stdio",
    "# a CPU profile of the gateway node at saturation, then the top functions and packages:",
    "node test/bench/run.mjs --only c --skip-sections memory,propagation,startup --no-write --profile /tmp/gw-prof",
    "node test/bench/profile-summary.mjs /tmp/gw-prof/*.cpuprofile --top 40",
    "```",
    "",
  );
  if (report.notes?.length) s.push("## Notes", "", ...report.notes.map((n) => `- ${n}`), "");
  return s.join("\n");
}

/** The issue's targets against this run's figures (reported, never asserted). */
function targets(report) {
  const at = (k, mode) => report.throughput?.results[k]?.find((r) => r.mode === mode);
  const top = `${Math.max(...cfg.rates)}/s`;
  const sat = `saturation (${cfg.concurrency} in flight)`;
  const a = at("a", top);
  const c = at("c", top);
  const b = at("b", sat);
  const cs = at("c", sat);
  const out = [];
  const row = (what, value, limit, fmt) =>
    out.push({
      what,
      measured: Number.isFinite(value) ? fmt(value) : "not run",
      met: Number.isFinite(value) ? limit(value) : null,
    });
  row(
    `added latency vs direct at ${top}, p50 ≤ 0.5 ms`,
    a && c ? c.p50 - a.p50 : Number.NaN,
    (v) => v <= 0.5,
    (v) => `${signed(v)} ms`,
  );
  row(
    `added latency vs direct at ${top}, p99 ≤ 2 ms`,
    a && c ? c.p99 - a.p99 : Number.NaN,
    (v) => v <= 2,
    (v) => `${signed(v)} ms`,
  );
  row(
    "gateway throughput ≥ 80% of the bare proxy",
    b && cs ? (100 * cs.throughput) / b.throughput : Number.NaN,
    (v) => v >= 80,
    (v) => `${v.toFixed(0)}%`,
  );
  row(
    "≤ 10 KB per idle session",
    report.memory?.rssPerSession ?? Number.NaN,
    (v) => v <= 10 * 1024,
    (v) => `${kb(v)} KB (RSS slope)`,
  );
  row(
    "propagation p99 ≤ 100 ms",
    report.propagation?.p99 ?? Number.NaN,
    (v) => v <= 100,
    (v) => `${ms(v)} ms`,
  );
  row(
    `start ≤ 2 s with ${cfg.tenants} tenants`,
    report.startup?.readyMs ?? Number.NaN,
    (v) => v <= 2000,
    (v) => `${ms(v)} ms`,
  );
  return out;
}

// ---------------------------------------------------------------- main

const report = { startedAt: new Date().toISOString(), loadStart: os.loadavg()[0], notes: [] };
try {
  const sha = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8" }).trim();
  report.notes.push(`commit ${sha}`);
} catch {
  // not a git checkout
}
await sectionThroughput(report);
if (!cfg.skipSections.has("memory")) await sectionIdleMemory(report);
if (!cfg.skipSections.has("propagation")) await sectionPropagation(report);
if (!cfg.skipSections.has("startup")) await sectionStartup(report);
report.finishedAt = new Date().toISOString();
report.loadEnd = os.loadavg()[0];

const md = markdown(report);
process.stdout.write(`\n${md}\n`);
if (cfg.write) {
  writeFileSync(resolve(here, "RESULTS.md"), md);
  process.stdout.write(`wrote ${resolve(here, "RESULTS.md")}\n`);
}
killAll();
process.exit(0);
