// The soak (`npm run soak`, not in CI): steady calls with session churn (open, call, close; a share
// abandoned without DELETE) through two gateway nodes; every sample records each node's RSS, heap and
// open handles, the Redis key count and the Postgres connection count. Writes test/chaos/soak-last.md
// (table) and soak-last.svg (chart). SOAK_MINUTES (30), SOAK_RATE calls/s (300), SOAK_SAMPLE_MS (60 s).
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, expect, it } from "vitest";
import { connectAgent } from "../support/agent.js";
import { printLogsOnFailure } from "../support/hooks.js";
import { sleep } from "../support/processes.js";
import { ChaosStack, TENANT } from "./harness.js";
import { LoadBalancer } from "./traffic.js";

printLogsOnFailure();

const MINUTES = Number(process.env.SOAK_MINUTES ?? 30);
const RATE = Number(process.env.SOAK_RATE ?? 300);
const SAMPLE_MS = Number(process.env.SOAK_SAMPLE_MS ?? 60_000);
const CALLS_PER_SESSION = 10;
const ABANDON_SHARE = 0.2;
const LOOPS = Math.max(4, Math.ceil(RATE / 25));

interface Sample {
  at: number;
  calls: number;
  failed: number;
  sessions: number;
  rssMb: number[];
  heapMb: number[];
  handles: number[];
  redisKeys: number;
  pgConnections: number;
}

let c: ChaosStack;
let lb: LoadBalancer;
const samples: Sample[] = [];

beforeAll(async () => {
  c = await ChaosStack.start({ gateways: 2, workers: 1 });
  lb = new LoadBalancer(() => c.stack.gateways.map((g) => g.url));
}, 240_000);

afterAll(async () => {
  lb?.close();
  await c?.stop();
});

function metricValue(text: string, name: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : Number.NaN;
}

async function sample(counts: { calls: number; failed: number; sessions: number }): Promise<Sample> {
  const texts = await Promise.all(
    c.stack.gateways.map(async (g) => (await fetch(`${g.metricsUrl}/metrics`)).text()),
  );
  const redis = new Redis(c.redis.url, { maxRetriesPerRequest: 1 });
  const redisKeys = await redis.dbsize();
  redis.disconnect();
  const [row] = await c.db.prisma.$queryRawUnsafe<Array<{ n: number }>>(
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend'",
  );
  return {
    at: Date.now(),
    ...counts,
    rssMb: texts.map((t) => Math.round(metricValue(t, "process_resident_memory_bytes") / 1e6)),
    heapMb: texts.map((t) => Math.round(metricValue(t, "nodejs_heap_size_used_bytes") / 1e6)),
    handles: texts.map((t) => metricValue(t, "nodejs_active_handles_total")),
    redisKeys,
    pgConnections: row?.n ?? Number.NaN,
  };
}

function chart(rows: Sample[]): string {
  const W = 720;
  const H = 300;
  const pad = 40;
  const series: Array<{ name: string; color: string; values: number[] }> = [
    { name: "RSS node 0 (MB)", color: "#1f77b4", values: rows.map((r) => r.rssMb[0] ?? 0) },
    { name: "RSS node 1 (MB)", color: "#aec7e8", values: rows.map((r) => r.rssMb[1] ?? 0) },
    { name: "heap node 0 (MB)", color: "#ff7f0e", values: rows.map((r) => r.heapMb[0] ?? 0) },
    { name: "handles node 0", color: "#2ca02c", values: rows.map((r) => r.handles[0] ?? 0) },
    { name: "Redis keys", color: "#d62728", values: rows.map((r) => r.redisKeys) },
    { name: "Postgres connections", color: "#9467bd", values: rows.map((r) => r.pgConnections) },
  ];
  const max = Math.max(1, ...series.flatMap((s) => s.values));
  const x = (i: number) => pad + (i * (W - 2 * pad)) / Math.max(1, rows.length - 1);
  const y = (v: number) => H - pad - (v * (H - 2 * pad)) / max;
  const lines = series.map(
    (s) =>
      `<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ")}"/>`,
  );
  const legend = series.map(
    (s, i) => `<text x="${pad + 10}" y="${pad + 14 * i}" font-size="11" fill="${s.color}">${s.name}</text>`,
  );
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">`,
    "<title>Soak: gateway RSS, heap and handles, Redis keys and Postgres connections over time</title>",
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<line x1="${pad}" y1="${H - pad}" x2="${W - pad}" y2="${H - pad}" stroke="#999"/>`,
    `<line x1="${pad}" y1="${pad}" x2="${pad}" y2="${H - pad}" stroke="#999"/>`,
    `<text x="${pad}" y="${H - 10}" font-size="11">samples every ${SAMPLE_MS / 1000} s over ${MINUTES} min; y max ${max}</text>`,
    ...lines,
    ...legend,
    "</svg>",
  ].join("\n");
}

it(`soak: ${MINUTES} min at ${RATE} calls/s with session churn`, async () => {
  const counts = { calls: 0, failed: 0, sessions: 0 };
  const end = Date.now() + MINUTES * 60_000;
  const perLoopGapMs = (1000 * LOOPS) / RATE;
  const loop = async (n: number) => {
    while (Date.now() < end) {
      const agent = await connectAgent(c.stack.mcpUrl(TENANT), { token: c.key, fetch: lb.fetch }).catch(
        () => null,
      );
      if (!agent) {
        counts.failed++;
        await sleep(200);
        continue;
      }
      counts.sessions++;
      for (let i = 0; i < CALLS_PER_SESSION && Date.now() < end; i++) {
        const t0 = Date.now();
        try {
          await agent.client.callTool({ name: "alpha_echo", arguments: { text: `soak-${n}-${i}` } });
          counts.calls++;
        } catch {
          counts.failed++;
        }
        await sleep(Math.max(0, perLoopGapMs - (Date.now() - t0)));
      }
      // 20% abandoned: the client goes away without DELETE (its session expires by TTL).
      if (Math.random() >= ABANDON_SHARE) await agent.transport.terminateSession().catch(() => {});
      await agent.close();
    }
  };
  const loops = Array.from({ length: LOOPS }, (_, i) => loop(i));
  const sampler = (async () => {
    samples.push(await sample(counts));
    while (Date.now() < end) {
      await sleep(Math.min(SAMPLE_MS, Math.max(0, end - Date.now())));
      samples.push(await sample({ ...counts }));
    }
  })();
  await Promise.all([...loops, sampler]);
  const dir = resolve(import.meta.dirname);
  const rows = samples.map((s, i) => {
    const prev = samples[i - 1];
    const secs = prev ? (s.at - prev.at) / 1000 : 0;
    const rate = prev ? Math.round((s.calls - prev.calls) / secs) : 0;
    return `| ${((s.at - samples[0]!.at) / 60_000).toFixed(1)} | ${rate} | ${s.calls} | ${s.failed} | ${s.sessions} | ${s.rssMb.join(" / ")} | ${s.heapMb.join(" / ")} | ${s.handles.join(" / ")} | ${s.redisKeys} | ${s.pgConnections} |`;
  });
  writeFileSync(
    resolve(dir, "soak-last.md"),
    [
      `Soak of ${new Date(samples[0]!.at).toISOString()}: ${MINUTES} min, target ${RATE} calls/s over ${LOOPS} client loops, ${CALLS_PER_SESSION} calls per session, ${ABANDON_SHARE * 100}% abandoned without DELETE.`,
      "",
      "| minute | calls/s | calls | failed | sessions opened | RSS MB (node 0 / 1) | heap MB | handles | Redis keys | Postgres connections |",
      "|---|---|---|---|---|---|---|---|---|---|",
      ...rows,
      "",
    ].join("\n"),
  );
  writeFileSync(resolve(dir, "soak-last.svg"), chart(samples));
  expect(counts.calls).toBeGreaterThan(0);
});
