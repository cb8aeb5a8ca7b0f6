import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { BullMqJobRunner } from "./bullmq.runner.js";
import { InProcessJobRunner } from "./in-process.runner.js";
import { defineJob, type JobInfo, type JobRunner, type JobType, PermanentJobError } from "./job.types.js";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const prefixes: string[] = [];

function bullmq(prefix = `gh-test-jobs-${randomBytes(4).toString("hex")}`): BullMqJobRunner {
  prefixes.push(prefix);
  return new BullMqJobRunner({ redisUrl: REDIS_URL, prefix });
}

afterAll(async () => {
  const redis = new Redis(REDIS_URL);
  for (const prefix of prefixes) {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
  }
  await redis.quit();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await sleep(25);
  }
}

const Payload = z.strictObject({ n: z.number().int() });

let seq = 0;
function jobType(overrides: Partial<Omit<JobType<{ n: number }>, "name" | "payload">> = {}) {
  seq += 1;
  return defineJob({
    name: `test-${seq}-${randomBytes(3).toString("hex")}`,
    payload: Payload,
    attempts: 3,
    backoffMs: 100,
    timeoutMs: 2_000,
    concurrency: 2,
    retainMs: 60_000,
    ...overrides,
  });
}

const runners: Array<[string, () => JobRunner]> = [
  ["in-process", () => new InProcessJobRunner()],
  ["bullmq", () => bullmq()],
];

describe.each(runners)("%s job runner", (_kind, make) => {
  const open: JobRunner[] = [];
  const runner = () => {
    const r = make();
    open.push(r);
    return r;
  };
  afterEach(async () => {
    await Promise.all(open.splice(0).map((r) => r.close()));
  });

  it("runs a job with its validated payload and rejects a bad payload at enqueue", async () => {
    const r = runner();
    const type = jobType();
    const seen: number[] = [];
    await r.work(type, async (p) => {
      seen.push(p.n);
      return { doubled: p.n * 2 };
    });
    await expect(r.enqueue(type, { n: "x" } as unknown as { n: number }, { jobId: "bad" })).rejects.toThrow();
    await r.enqueue(type, { n: 21 }, { jobId: "a" });
    const info = await until(async () => {
      const j = await r.get(type, "a");
      return j?.state === "completed" ? j : undefined;
    });
    expect(seen).toEqual([21]);
    expect(info.result).toEqual({ doubled: 42 });
    expect(info.attemptsMade).toBe(1);
  });

  it("delays a job and runs one job per id, even after it finished", async () => {
    const r = runner();
    const type = jobType();
    const ran: number[] = [];
    await r.work(type, async () => {
      ran.push(Date.now());
    });
    const t0 = Date.now();
    const first = await r.enqueue(type, { n: 1 }, { jobId: "same", delayMs: 400 });
    const second = await r.enqueue(type, { n: 2 }, { jobId: "same", delayMs: 0 });
    expect(first.added).toBe(true);
    expect(second.added).toBe(false);
    expect((await r.get(type, "same"))?.state).toBe("delayed");
    await until(async () => (await r.get(type, "same"))?.state === "completed");
    expect(ran).toHaveLength(1);
    expect(ran[0]! - t0).toBeGreaterThanOrEqual(350);
    const third = await r.enqueue(type, { n: 3 }, { jobId: "same" });
    expect(third.added).toBe(false);
    await sleep(300);
    expect(ran).toHaveLength(1);
  });

  it("retries with exponential backoff, then succeeds", async () => {
    const r = runner();
    const type = jobType({ attempts: 4, backoffMs: 150 });
    const tries: number[] = [];
    await r.work(type, async (_p, ctx) => {
      tries.push(Date.now());
      if (ctx.attempt < 3) throw new Error(`boom ${ctx.attempt}`);
      return "ok";
    });
    await r.enqueue(type, { n: 1 }, { jobId: "retry" });
    const info = await until(async () => {
      const j = await r.get(type, "retry");
      return j?.state === "completed" ? j : undefined;
    });
    expect(info.attemptsMade).toBe(3);
    expect(tries).toHaveLength(3);
    // 150 ms before the 2nd try, 300 ms before the 3rd.
    expect(tries[1]! - tries[0]!).toBeGreaterThanOrEqual(140);
    expect(tries[2]! - tries[1]!).toBeGreaterThanOrEqual(290);
  });

  it("gives up after the last attempt, and at once on a permanent error", async () => {
    const r = runner();
    const flaky = jobType({ attempts: 2, backoffMs: 50 });
    const permanent = jobType({ attempts: 5, backoffMs: 50 });
    let flakyTries = 0;
    let permanentTries = 0;
    await r.work(flaky, async () => {
      flakyTries += 1;
      throw new Error("still broken");
    });
    await r.work(permanent, async () => {
      permanentTries += 1;
      throw new PermanentJobError("cannot work, ever");
    });
    await r.enqueue(flaky, { n: 1 }, { jobId: "f" });
    await r.enqueue(permanent, { n: 1 }, { jobId: "p" });
    const f = await until(async () => {
      const j = await r.get(flaky, "f");
      return j?.state === "failed" ? j : undefined;
    });
    const p = await until(async () => {
      const j = await r.get(permanent, "p");
      return j?.state === "failed" ? j : undefined;
    });
    expect(flakyTries).toBe(2);
    expect(f.error).toBe("still broken");
    expect(permanentTries).toBe(1);
    expect(p.error).toBe("cannot work, ever");
  });

  it("times out a try that runs too long and aborts its signal", async () => {
    const r = runner();
    const type = jobType({ attempts: 2, backoffMs: 50, timeoutMs: 200 });
    const aborted: boolean[] = [];
    await r.work(type, async (_p, ctx) => {
      await sleep(600);
      aborted.push(ctx.signal.aborted);
    });
    await r.enqueue(type, { n: 1 }, { jobId: "slow" });
    const info = await until(async () => {
      const j = await r.get(type, "slow");
      return j?.state === "failed" ? j : undefined;
    });
    expect(info.error).toMatch(/timed out after 200 ms/);
    expect(info.attemptsMade).toBe(2);
    await until(() => aborted.length === 2);
    expect(aborted).toEqual([true, true]);
  });

  it("lists a group's jobs newest first and cancels a delayed one", async () => {
    const r = runner();
    const type = jobType();
    await r.work(type, async () => "done");
    await r.enqueue(type, { n: 1 }, { jobId: "g1", group: "credential.x" });
    await until(async () => (await r.get(type, "g1"))?.state === "completed");
    await r.enqueue(type, { n: 2 }, { jobId: "g2", group: "credential.x", delayMs: 60_000 });
    const listed = await r.listGroup("credential.x");
    expect(listed.map((j: JobInfo) => [j.id, j.state])).toEqual([
      ["g2", "delayed"],
      ["g1", "completed"],
    ]);
    expect(listed[0]!.runAt && Date.parse(listed[0]!.runAt) - Date.now()).toBeGreaterThan(50_000);
    expect(await r.cancel(type, "g2")).toBe(true);
    expect(await r.get(type, "g2")).toBeNull();
    expect(await r.cancel(type, "g1")).toBe(false);
  });

  it("holds jobs enqueued before a handler registers and runs them when one does", async () => {
    const r = runner();
    const type = jobType();
    await r.enqueue(type, { n: 5 }, { jobId: "early" });
    await sleep(100);
    expect((await r.get(type, "early"))?.state).toBe("waiting");
    const seen: number[] = [];
    await r.work(type, async (p) => {
      seen.push(p.n);
    });
    await until(() => seen.length === 1);
    expect(seen).toEqual([5]);
  });
});

describe("bullmq job runner with several workers", () => {
  it("two workers on one queue run each job id exactly once, never twice at once", async () => {
    const prefix = `gh-test-jobs-${randomBytes(4).toString("hex")}`;
    const producer = bullmq(prefix);
    const workerA = bullmq(prefix);
    const workerB = bullmq(prefix);
    const type = jobType({ concurrency: 4 });
    const running = new Set<string>();
    const runs = new Map<string, string[]>();
    let overlap = 0;
    const handler = (who: string) => async (p: { n: number }) => {
      const id = `job-${p.n}`;
      if (running.has(id)) overlap += 1;
      running.add(id);
      await sleep(30 + Math.random() * 40);
      running.delete(id);
      runs.set(id, [...(runs.get(id) ?? []), who]);
    };
    try {
      await workerA.work(type, handler("A"));
      await workerB.work(type, handler("B"));
      // Every id enqueued three times, by three different clients, all at once.
      await Promise.all(
        Array.from({ length: 30 }, (_, n) => [
          producer.enqueue(type, { n }, { jobId: `job-${n}` }),
          workerA.enqueue(type, { n }, { jobId: `job-${n}` }),
          workerB.enqueue(type, { n }, { jobId: `job-${n}` }),
        ]).flat(),
      );
      await until(() => runs.size === 30, 20_000);
      await sleep(300);
      expect(overlap).toBe(0);
      expect([...runs.values()].every((who) => who.length === 1)).toBe(true);
      const byWorker = [...runs.values()].flat();
      expect(byWorker).toContain("A");
      expect(byWorker).toContain("B");
    } finally {
      await Promise.all([producer.close(), workerA.close(), workerB.close()]);
    }
  });
});
