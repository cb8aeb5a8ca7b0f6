#!/usr/bin/env node
// A load generator that speaks MCP Streamable HTTP the way a client must (spec 2025-11-25,
// "Transports"): `initialize` once per session, keep the `Mcp-Session-Id` it returns, send
// `notifications/initialized`, then send every request with the session id and the negotiated
// `MCP-Protocol-Version` header. Answers may be JSON or an SSE stream; both are parsed and
// every tools/call result is checked (the echo must come back), so errors are never counted
// as fast successes.
//
// Two modes:
//   fixed rate (open loop): requests are *scheduled* at a constant rate whatever the target does,
//     and latency is measured from the scheduled time, so a stalled target shows up as latency
//     instead of silently lowering the offered load (no coordinated omission).
//   saturation (closed loop): C workers send back to back; throughput is the capacity.
//
// As a command (prints JSON):
//   node test/bench/loadgen.mjs --url http://127.0.0.1:PORT/mcp [--tool echo] [--header 'K: V']...
//        [--sessions 8] [--duration 10] (--rate 1000 | --saturate 32)
import http from "node:http";
import { fileURLToPath } from "node:url";

export const PROTOCOL_VERSION = "2025-11-25";

/** One MCP endpoint to load: URL, extra headers (auth), and the tool to call. */
export class McpTarget {
  /**
   * @param {{ url: string, headers?: Record<string,string>, tool?: string, text?: string, maxSockets?: number }} o
   */
  constructor(o) {
    this.url = new URL(o.url);
    this.headers = o.headers ?? {};
    this.tool = o.tool ?? "echo";
    this.text = o.text ?? "hello from the bench";
    this.agent = new http.Agent({
      keepAlive: true,
      maxSockets: o.maxSockets ?? 64,
      maxFreeSockets: o.maxSockets ?? 64,
    });
    this.nextId = 1;
    this.callBody = (id) =>
      `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":${JSON.stringify(this.tool)},"arguments":{"text":${JSON.stringify(this.text)}}}}`;
  }

  close() {
    this.agent.destroy();
  }

  /** POST one JSON-RPC message; resolves {status, headers, body}. */
  post(body, session) {
    const headers = {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "content-length": Buffer.byteLength(body),
      ...this.headers,
    };
    if (session?.id) headers["mcp-session-id"] = session.id;
    if (session?.protocolVersion) headers["mcp-protocol-version"] = session.protocolVersion;
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: this.url.hostname,
          port: this.url.port,
          path: this.url.pathname + this.url.search,
          method: "POST",
          headers,
          agent: this.agent,
        },
        (res) => {
          let data = "";
          res.setEncoding("utf8");
          res.on("data", (c) => {
            data += c;
          });
          res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: data }));
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(body);
    });
  }
}

/** The JSON-RPC response in a body that is JSON or an SSE stream (first `data:` with an id). */
export function parseRpc(res) {
  const type = String(res.headers["content-type"] ?? "");
  if (type.includes("text/event-stream")) {
    for (const line of res.body.split("\n")) {
      if (!line.startsWith("data:")) continue;
      const data = line.slice(5).trim();
      if (!data) continue; // priming event (resumability) carries no message
      const msg = JSON.parse(data);
      if (msg && msg.id !== undefined && (msg.result !== undefined || msg.error !== undefined)) return msg;
    }
    throw new Error(`SSE stream without a response: ${res.body.slice(0, 200)}`);
  }
  if (!res.body) throw new Error(`HTTP ${res.status} with an empty body`);
  return JSON.parse(res.body);
}

/** initialize + notifications/initialized; returns {id, protocolVersion}. */
export async function openSession(target) {
  const init = await target.post(
    JSON.stringify({
      jsonrpc: "2.0",
      id: 0,
      method: "initialize",
      params: {
        protocolVersion: PROTOCOL_VERSION,
        capabilities: {},
        clientInfo: { name: "gatehouse-bench", version: "1" },
      },
    }),
  );
  if (init.status !== 200) throw new Error(`initialize: HTTP ${init.status}: ${init.body.slice(0, 300)}`);
  const msg = parseRpc(init);
  if (msg.error) throw new Error(`initialize: ${JSON.stringify(msg.error)}`);
  const sid = init.headers["mcp-session-id"];
  const session = {
    id: typeof sid === "string" ? sid : undefined,
    protocolVersion: msg.result.protocolVersion,
  };
  const ack = await target.post(
    JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }),
    session,
  );
  if (ack.status !== 202 && ack.status !== 200)
    throw new Error(`notifications/initialized: HTTP ${ack.status}`);
  return session;
}

export async function openSessions(target, n) {
  const sessions = [];
  for (let i = 0; i < n; i++) sessions.push(await openSession(target));
  return sessions;
}

/** One tools/call; resolves true when the echo came back, otherwise an Error (never throws). */
export async function callTool(target, session) {
  try {
    const res = await target.post(target.callBody(target.nextId++), session);
    if (res.status !== 200) return new Error(`HTTP ${res.status}: ${res.body.slice(0, 200)}`);
    const msg = parseRpc(res);
    if (msg.error) return new Error(`JSON-RPC ${msg.error.code}: ${msg.error.message}`);
    if (msg.result?.content?.[0]?.text !== target.text) {
      return new Error(`unexpected result ${JSON.stringify(msg.result).slice(0, 200)}`);
    }
    return true;
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

class Recorder {
  constructor() {
    this.latencies = [];
    this.errors = 0;
    this.firstError = null;
  }
  add(ms, result) {
    if (result === true) this.latencies.push(ms);
    else {
      this.errors++;
      this.firstError ??= result.message;
    }
  }
}

function percentile(sorted, p) {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function summarize(rec, elapsedMs, extra = {}) {
  const sorted = Float64Array.from(rec.latencies).sort();
  const ok = sorted.length;
  return {
    ok,
    errors: rec.errors,
    firstError: rec.firstError,
    seconds: elapsedMs / 1000,
    throughput: ok / (elapsedMs / 1000),
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    p999: percentile(sorted, 99.9),
    max: ok ? sorted[ok - 1] : Number.NaN,
    ...extra,
  };
}

/**
 * Open loop: `rate` calls/s for `durationMs` after `warmupMs`, round-robin over `sessions`.
 * A call is not sent (counted in `skipped`) while `maxInFlight` are outstanding: a sign the
 * target cannot keep up with that rate.
 */
export async function fixedRate(target, sessions, { rate, durationMs, warmupMs = 1000, maxInFlight = 2000 }) {
  const rec = new Recorder();
  const interval = 1000 / rate;
  const start = performance.now();
  const measureFrom = start + warmupMs;
  const end = measureFrom + durationMs;
  let next = start;
  let n = 0;
  let inFlight = 0;
  let skipped = 0;
  let sent = 0;
  const pending = new Set();

  await new Promise((resolveLoop) => {
    const tick = () => {
      const now = performance.now();
      while (next <= now && next < end) {
        const scheduled = next;
        next += interval;
        if (inFlight >= maxInFlight) {
          if (scheduled >= measureFrom) skipped++;
          continue;
        }
        inFlight++;
        if (scheduled >= measureFrom) sent++;
        const session = sessions[n++ % sessions.length];
        const p = callTool(target, session).then((result) => {
          inFlight--;
          pending.delete(p);
          if (scheduled >= measureFrom) rec.add(performance.now() - scheduled, result);
        });
        pending.add(p);
      }
      if (next >= end) resolveLoop();
      else setTimeout(tick, Math.max(0, Math.min(next - performance.now(), 1)));
    };
    tick();
  });
  await Promise.all(pending);
  const elapsed = performance.now() - measureFrom;
  return summarize(rec, Math.max(elapsed, durationMs), { offered: rate, sent, skipped });
}

/** Closed loop: `concurrency` workers back to back for `durationMs` after `warmupMs`. */
export async function saturate(target, sessions, { concurrency, durationMs, warmupMs = 1000 }) {
  const rec = new Recorder();
  const start = performance.now();
  const measureFrom = start + warmupMs;
  const end = measureFrom + durationMs;
  const worker = async (w) => {
    const session = sessions[w % sessions.length];
    for (;;) {
      const t0 = performance.now();
      if (t0 >= end) return;
      const result = await callTool(target, session);
      if (t0 >= measureFrom) rec.add(performance.now() - t0, result);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  return summarize(rec, performance.now() - measureFrom, { concurrency });
}

// ---- command line ----
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const argv = process.argv.slice(2);
  const opt = (name, fallback) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : fallback;
  };
  const headers = {};
  argv.forEach((a, i) => {
    if (a === "--header" && argv[i + 1]) {
      const [k, ...v] = argv[i + 1].split(":");
      headers[k.trim().toLowerCase()] = v.join(":").trim();
    }
  });
  const target = new McpTarget({ url: opt("url"), headers, tool: opt("tool", "echo") });
  const sessions = await openSessions(target, Number(opt("sessions", "8")));
  const durationMs = Number(opt("duration", "10")) * 1000;
  const result = opt("saturate")
    ? await saturate(target, sessions, { concurrency: Number(opt("saturate")), durationMs })
    : await fixedRate(target, sessions, { rate: Number(opt("rate", "200")), durationMs });
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  target.close();
}
