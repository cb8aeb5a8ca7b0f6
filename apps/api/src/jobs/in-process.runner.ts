import {
  assertJobId,
  backoffDelay,
  type EnqueueOptions,
  errorMessage,
  type JobHandler,
  type JobInfo,
  type JobRunner,
  type JobType,
  PermanentJobError,
  runTry,
} from "./job.types.js";

interface Entry {
  type: JobType<unknown>;
  payload: unknown;
  info: JobInfo;
  timer?: NodeJS.Timeout;
}

interface Lane {
  type: JobType<unknown>;
  handler: JobHandler<unknown>;
  ready: Entry[];
  running: Set<Promise<void>>;
}

const GROUP_LIMIT = 20;

/**
 * The embedded-mode runner: one process, timers instead of Redis. Same rules as the BullMQ
 * runner: delays, retries with exponential backoff, a timeout per try, and at most one job per
 * id while it is pending, running or remembered.
 */
export class InProcessJobRunner implements JobRunner {
  readonly kind = "in-process" as const;
  private readonly jobs = new Map<string, Entry>();
  private readonly lanes = new Map<string, Lane>();
  private readonly groups = new Map<string, string[]>();
  private readonly closing = new AbortController();

  async enqueue<P>(
    type: JobType<P>,
    payload: P,
    opts: EnqueueOptions,
  ): Promise<{ jobId: string; added: boolean }> {
    assertJobId(opts.jobId);
    const parsed = type.payload.parse(payload);
    if (this.closing.signal.aborted) throw new Error("The job runner is closed");
    const key = this.key(type.name, opts.jobId);
    if (this.jobs.has(key)) return { jobId: opts.jobId, added: false };
    const now = Date.now();
    const delay = Math.max(0, opts.delayMs ?? 0);
    const entry: Entry = {
      type: type as JobType<unknown>,
      payload: parsed,
      info: {
        id: opts.jobId,
        type: type.name,
        state: delay > 0 ? "delayed" : "waiting",
        attemptsMade: 0,
        maxAttempts: type.attempts,
        createdAt: new Date(now).toISOString(),
        runAt: new Date(now + delay).toISOString(),
        finishedAt: null,
        error: null,
        result: null,
      },
    };
    this.jobs.set(key, entry);
    if (opts.group) {
      const list = this.groups.get(opts.group) ?? [];
      list.unshift(key);
      list.length = Math.min(list.length, GROUP_LIMIT);
      this.groups.set(opts.group, list);
    }
    this.schedule(entry, delay);
    return { jobId: opts.jobId, added: true };
  }

  async get(type: JobType<unknown>, jobId: string): Promise<JobInfo | null> {
    const entry = this.jobs.get(this.key(type.name, jobId));
    return entry ? { ...entry.info } : null;
  }

  async listGroup(group: string, limit = GROUP_LIMIT): Promise<JobInfo[]> {
    const keys = this.groups.get(group) ?? [];
    const out: JobInfo[] = [];
    for (const key of keys) {
      const entry = this.jobs.get(key);
      if (entry) out.push({ ...entry.info });
      if (out.length >= limit) break;
    }
    return out;
  }

  async cancel(type: JobType<unknown>, jobId: string): Promise<boolean> {
    const key = this.key(type.name, jobId);
    const entry = this.jobs.get(key);
    if (!entry || (entry.info.state !== "waiting" && entry.info.state !== "delayed")) return false;
    clearTimeout(entry.timer);
    const lane = this.lanes.get(type.name);
    if (lane) lane.ready = lane.ready.filter((e) => e !== entry);
    this.jobs.delete(key);
    return true;
  }

  async work<P>(type: JobType<P>, handler: JobHandler<P>): Promise<void> {
    if (this.lanes.has(type.name)) throw new Error(`A handler for ${type.name} jobs is already registered`);
    const lane: Lane = {
      type: type as JobType<unknown>,
      handler: handler as JobHandler<unknown>,
      ready: [],
      running: new Set(),
    };
    this.lanes.set(type.name, lane);
    // Jobs enqueued before anyone worked on them and already due.
    for (const entry of this.jobs.values()) {
      if (entry.type.name === type.name && entry.info.state === "waiting") lane.ready.push(entry);
    }
    this.pump(lane);
  }

  async close(): Promise<void> {
    this.closing.abort();
    for (const entry of this.jobs.values()) clearTimeout(entry.timer);
    const running = [...this.lanes.values()].flatMap((lane) => [...lane.running]);
    await Promise.allSettled(running);
    this.jobs.clear();
    this.lanes.clear();
    this.groups.clear();
  }

  private key(type: string, jobId: string): string {
    return `${type}\u0000${jobId}`;
  }

  private schedule(entry: Entry, delay: number): void {
    if (delay <= 0) {
      entry.info.state = "waiting";
      this.makeReady(entry);
      return;
    }
    entry.info.state = "delayed";
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      entry.info.state = "waiting";
      this.makeReady(entry);
    }, delay);
    entry.timer.unref();
  }

  private makeReady(entry: Entry): void {
    const lane = this.lanes.get(entry.type.name);
    if (!lane) return; // picked up by work() when a handler registers
    lane.ready.push(entry);
    this.pump(lane);
  }

  private pump(lane: Lane): void {
    while (
      !this.closing.signal.aborted &&
      lane.running.size < lane.type.concurrency &&
      lane.ready.length > 0
    ) {
      const entry = lane.ready.shift()!;
      const run = this.runOne(lane, entry).finally(() => {
        lane.running.delete(run);
        this.pump(lane);
      });
      lane.running.add(run);
    }
  }

  private async runOne(lane: Lane, entry: Entry): Promise<void> {
    const { info } = entry;
    info.state = "active";
    info.attemptsMade += 1;
    try {
      info.result =
        (await runTry(lane.type, lane.handler, entry.payload, {
          jobId: info.id,
          attempt: info.attemptsMade,
          closing: this.closing.signal,
        })) ?? null;
      info.error = null;
      this.finish(entry, "completed");
    } catch (error) {
      info.error = errorMessage(error);
      const permanent = error instanceof PermanentJobError;
      if (!permanent && info.attemptsMade < lane.type.attempts && !this.closing.signal.aborted) {
        const delay = backoffDelay(lane.type, info.attemptsMade);
        info.runAt = new Date(Date.now() + delay).toISOString();
        this.schedule(entry, delay);
      } else {
        this.finish(entry, "failed");
      }
    }
  }

  private finish(entry: Entry, state: "completed" | "failed"): void {
    entry.info.state = state;
    entry.info.finishedAt = new Date().toISOString();
    const key = this.key(entry.type.name, entry.info.id);
    const forget = setTimeout(() => {
      if (this.jobs.get(key) === entry) this.jobs.delete(key);
    }, entry.type.retainMs);
    forget.unref();
  }
}
