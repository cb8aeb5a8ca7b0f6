// The fault suite (`npm run chaos`, not in `npm test`): the API, two workers and two gateway nodes on
// a Postgres and a Redis of its own, real upstreams, steady SDK-client traffic through a load
// balancer; one fault at a time, each measured: calls failed, sessions lost, audit events lost, time
// to recover, what the agent saw. Figures go to test/chaos/last-run.{json,md} (RESULTS.md quotes them).
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { printLogsOnFailure } from "../support/hooks.js";
import { sleep, waitFor } from "../support/processes.js";
import { ChaosStack, TENANT } from "./harness.js";
import { type CallRecord, LoadBalancer, Traffic } from "./traffic.js";

printLogsOnFailure();

const OUTAGE_MS = Number(process.env.CHAOS_OUTAGE_MS ?? 10_000);
const SESSIONS = Number(process.env.CHAOS_SESSIONS ?? 4);
const INTERVAL_MS = Number(process.env.CHAOS_INTERVAL_MS ?? 50);
/** Lifetime of the OAuth upstream's access tokens (s): refreshed by a worker at half of it. */
const TOKEN_TTL_S = 4;

interface Figures {
  fault: string;
  calls: number;
  failed: number;
  /** Failed calls to the upstream that was not at fault (upstream cases). */
  failedOther?: number;
  sessionsLost: number;
  auditLost: number;
  /** From the moment the faulty part was back (or killed, for nodes) to the end of the last call sent after it that failed. */
  recoverMs: number;
  agentSaw: string;
  notes: string;
}

const results: Figures[] = [];
let c: ChaosStack;
let lb: LoadBalancer;

beforeAll(async () => {
  c = await ChaosStack.start({ gateways: 2, workers: 2, oauthTokenTtl: TOKEN_TTL_S });
  lb = new LoadBalancer(() => c.stack.gateways.map((g) => g.url));
}, 240_000);

afterAll(async () => {
  lb?.close();
  await c?.stop();
  const dir = resolve(import.meta.dirname);
  writeFileSync(resolve(dir, "last-run.json"), `${JSON.stringify(results, null, 2)}\n`);
  const rows = results.map(
    (f) =>
      `| ${f.fault} | ${f.calls} | ${f.failed}${f.failedOther !== undefined ? ` (other upstream: ${f.failedOther})` : ""} | ${f.sessionsLost} | ${f.auditLost} | ${f.recoverMs} | ${f.agentSaw || "nothing"} | ${f.notes} |`,
  );
  writeFileSync(
    resolve(dir, "last-run.md"),
    [
      `Run of ${new Date().toISOString()}: ${SESSIONS} sessions, one call each per ${INTERVAL_MS} ms + latency, outages ${OUTAGE_MS} ms.`,
      "",
      "| fault | calls | failed | sessions lost | audit events lost | recover (ms) | what the agent saw | notes |",
      "|---|---|---|---|---|---|---|---|",
      ...rows,
      "",
    ].join("\n"),
  );
});

function summarize(records: CallRecord[]): string {
  const counts = new Map<string, number>();
  for (const r of records) {
    if (r.ok) continue;
    const k = `${r.tool}: ${r.error ?? "?"}`;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return [...counts].map(([e, n]) => `${n}× ${e}`).join("; ");
}

/**
 * Runs traffic, calls `fault` after a warm-up; `fault` returns the time the part was back. Traffic
 * goes on until every session has had `settle` ms of calls after that (and one success each).
 */
async function measure(
  name: string,
  fault: () => Promise<number>,
  opts: { tools?: string[]; faultyTool?: string; settleMs?: number; notes?: string } = {},
): Promise<Figures> {
  const tools = opts.tools ?? ["alpha_echo", "beta_echo", "gamma_whoami"];
  const traffic = new Traffic({
    url: c.stack.mcpUrl(TENANT),
    token: c.key,
    lb,
    sessions: SESSIONS,
    intervalMs: INTERVAL_MS,
    tools,
  });
  await traffic.start();
  let backAt = 0;
  try {
    await sleep(2000);
    backAt = await fault();
    // Recovered: every live session has succeeded on every tool after the part was back.
    await waitFor(
      `${name}: every session to succeed again`,
      () =>
        [...Array(SESSIONS).keys()]
          .filter((s) => !traffic.lost.has(s))
          .every((s) =>
            tools.every((t) =>
              traffic.records.some((r) => r.session === s && r.tool === t && r.ok && r.start > backAt),
            ),
          ),
      { timeoutMs: 60_000, intervalMs: 100 },
    ).catch(() => {});
    await sleep(opts.settleMs ?? 2000);
  } finally {
    await traffic.stop();
  }
  const records = traffic.records;
  const failed = records.filter((r) => !r.ok);
  // Calls sent after the part was back that still failed; calls caught by the fault itself (sent
  // before, ending later, e.g. a hang's timeouts) count as failed, not as recovery time.
  const lastFail = Math.max(0, ...failed.filter((r) => r.start >= backAt).map((r) => r.end));
  const figures: Figures = {
    fault: name,
    calls: records.length,
    failed: opts.faultyTool ? failed.filter((r) => r.tool === opts.faultyTool).length : failed.length,
    ...(opts.faultyTool ? { failedOther: failed.filter((r) => r.tool !== opts.faultyTool).length } : {}),
    sessionsLost: traffic.lost.size,
    auditLost: await c.auditLost(records),
    recoverMs: lastFail > backAt ? lastFail - backAt : 0,
    agentSaw: summarize(records),
    notes: opts.notes ?? "",
  };
  results.push(figures);
  console.log(JSON.stringify(figures));
  return figures;
}

describe("gateway node faults under load", () => {
  it("a node SIGKILLed: its sessions go on on the other node, at most the in-flight calls fail", async () => {
    const f = await measure("gateway node SIGKILL", async () => {
      await c.stack.gateways[1]!.proc.kill("SIGKILL");
      const at = Date.now();
      await sleep(3000);
      await c.stack.startGateway(1);
      return at;
    });
    expect.soft(f.sessionsLost).toBe(0);
    expect.soft(f.failed).toBeLessThanOrEqual(SESSIONS);
  });

  it("a node SIGTERMed: it drains, no session and no audit event is lost", async () => {
    const f = await measure("gateway node SIGTERM", async () => {
      await c.stack.gateways[1]!.proc.kill("SIGTERM", 15_000);
      const at = Date.now();
      await c.stack.startGateway(1);
      return at;
    });
    expect.soft(f.sessionsLost).toBe(0);
    expect.soft(f.auditLost).toBe(0);
    expect.soft(f.failed).toBe(0);
  });
});

describe("Redis", () => {
  it(`stopped for ${OUTAGE_MS / 1000} s and restarted empty: sessions go on, nothing is lost`, async () => {
    const f = await measure("Redis stopped, restarted empty", async () => {
      await c.redis.stop();
      await sleep(OUTAGE_MS);
      await c.redis.restart();
      return Date.now();
    });
    expect.soft(f.sessionsLost).toBe(0);
    expect.soft(f.auditLost).toBe(0);
    expect.soft(f.recoverMs).toBeLessThanOrEqual(5000);
  });
});

describe("Postgres", () => {
  it("restarted: calls go on, audit catches up", async () => {
    const f = await measure("Postgres restarted (fast)", async () => {
      await c.pg.restart("fast");
      return Date.now();
    });
    expect.soft(f.sessionsLost).toBe(0);
    expect.soft(f.auditLost).toBe(0);
  });

  it(`unreachable for ${OUTAGE_MS / 1000} s: calls go on from the snapshots, audit is buffered`, async () => {
    let api = "";
    const f = await measure("Postgres down", async () => {
      await c.pg.stop("immediate");
      await sleep(2000);
      // What an operator sees from the API meanwhile.
      const r = await c.stack.admin.request<{ error?: { code?: string } }>("GET", `/v1/tenants/${TENANT}`);
      const ready = await fetch(`${c.stack.api.url}/readyz`);
      const gw = (await (await fetch(`${c.stack.gateways[0]!.url}/readyz`)).json()) as { status?: string };
      api = `meanwhile: API GET tenant → ${r.status} ${r.body?.error?.code ?? ""}, API /readyz → ${ready.status}, gateway /readyz → ${gw.status}`;
      await sleep(OUTAGE_MS - 2000);
      await c.pg.startServer();
      return Date.now();
    });
    f.notes = api;
    expect.soft(f.sessionsLost).toBe(0);
    expect.soft(f.auditLost).toBe(0);
    expect.soft(f.failed).toBe(0);
  });
});

describe("upstream faults (beta; alpha stays healthy)", () => {
  it(`killed for ${OUTAGE_MS / 1000} s`, async () => {
    const f = await measure(
      "upstream killed",
      async () => {
        await c.beta.proc.kill("SIGKILL");
        await sleep(OUTAGE_MS);
        await c.restartBeta();
        return Date.now();
      },
      { faultyTool: "beta_echo" },
    );
    expect.soft(f.sessionsLost).toBe(0);
    expect.soft(f.failedOther).toBe(0);
  });

  it(`hanging (accepts, never answers) for ${OUTAGE_MS / 1000} s`, async () => {
    const f = await measure(
      "upstream hanging",
      async () => {
        c.proxy.mode = "hang";
        await sleep(OUTAGE_MS);
        c.proxy.mode = "pass";
        return Date.now();
      },
      { faultyTool: "beta_echo" },
    );
    expect.soft(f.sessionsLost).toBe(0);
    expect.soft(f.failedOther).toBe(0);
  });

  it(`slow (answers after 5 s) for ${OUTAGE_MS / 1000} s`, async () => {
    const f = await measure(
      "upstream slow (5 s)",
      async () => {
        c.proxy.mode = "slow";
        await sleep(OUTAGE_MS);
        c.proxy.mode = "pass";
        return Date.now();
      },
      { faultyTool: "beta_echo" },
    );
    expect.soft(f.sessionsLost).toBe(0);
    expect.soft(f.failed).toBe(0);
  });
});

describe("workers and the bus", () => {
  it("a worker killed: calls are not affected, the other worker goes on", async () => {
    const f = await measure("worker SIGKILL", async () => {
      await c.workers[0]!.kill("SIGKILL");
      const at = Date.now();
      await sleep(3000);
      await c.startWorker(0);
      return at;
    });
    expect.soft(f.failed).toBe(0);
  });

  it("bus subscriptions dropped while config changes: every node converges", async () => {
    const nodes = c.stack.gateways.map((_, i) => i);
    let converged = 0;
    const f = await measure("bus subscriptions dropped", async () => {
      await c.dropSubscriptions();
      // A change published while the subscribers reconnect, then one whose event never goes out
      // (written to the database only): the reconnect re-check and the periodic re-check heal them.
      await c.stack.admin.patchTenant(TENANT, { name: "Chaos tenant (renamed)" });
      const { configVersion } = await c.db.prisma.tenant.update({
        where: { id: c.tenantId },
        data: { configVersion: { increment: 1 } },
        select: { configVersion: true },
      });
      const at = Date.now();
      await waitFor(
        "every node to apply the last config version",
        async () => {
          const v = await Promise.all(
            nodes.map((i) => c.metric(i, "gatehouse_gateway_config_version", `tenant="${TENANT}"`)),
          );
          return v.every((x) => x === configVersion);
        },
        { timeoutMs: 30_000, intervalMs: 200 },
      );
      converged = Date.now() - at;
      return Date.now();
    });
    f.notes = `all nodes at the last version ${converged} ms after a change whose event was never published (GATEWAY_CONFIG_RECHECK_MS=10000)`;
    expect.soft(f.failed).toBe(0);
  });
});

describe(`OAuth upstream (client credentials, ${TOKEN_TTL_S} s tokens)`, () => {
  it("a worker killed mid-refresh: no OAuth call fails while the other worker lives", async () => {
    const f = await measure(
      "worker SIGKILL mid-refresh (OAuth)",
      async () => {
        // Tokens are refreshed every TTL/2: after 1.5 lifetimes a refresh is due or running.
        await sleep(TOKEN_TTL_S * 1500);
        await c.workers[0]!.kill("SIGKILL");
        const at = Date.now();
        await sleep(TOKEN_TTL_S * 2000);
        await c.startWorker(0);
        return at;
      },
      { tools: ["gamma_whoami", "alpha_echo"], faultyTool: "gamma_whoami" },
    );
    expect.soft(f.failed).toBe(0);
    expect.soft(f.sessionsLost).toBe(0);
  });

  it("all workers down for longer than a token's lifetime: the expired credential is refreshed on first use after", async () => {
    const f = await measure(
      "all workers down > token lifetime (OAuth)",
      async () => {
        await Promise.all(c.workers.map((w) => w.kill("SIGKILL")));
        await sleep(TOKEN_TTL_S * 2000);
        await c.startWorker(0);
        await c.startWorker(1);
        return Date.now();
      },
      { tools: ["gamma_whoami", "alpha_echo"], faultyTool: "gamma_whoami" },
    );
    expect.soft(f.sessionsLost).toBe(0);
    expect.soft(f.failedOther).toBe(0);
    expect.soft(f.recoverMs).toBeLessThanOrEqual(5000);
  });
});
