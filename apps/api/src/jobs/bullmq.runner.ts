import { type Job, Queue, UnrecoverableError, Worker } from "bullmq";
import { Redis } from "ioredis";
import {
  assertJobId,
  type EnqueueOptions,
  type JobHandler,
  type JobInfo,
  type JobRunner,
  type JobState,
  type JobType,
  PermanentJobError,
  runTry,
} from "./job.types.js";

export interface BullMqRunnerOptions {
  /** redis:// URL. */
  redisUrl: string;
  /** BullMQ key prefix; tests use a unique one per run. */
  prefix: string;
}

const GROUP_LIMIT = 20;
const GROUP_TTL_SECONDS = 7 * 24 * 3600;

/**
 * The distributed runner: BullMQ queues in Redis, one per job type. Any number of processes may
 * enqueue and work; BullMQ's job ids make enqueueing idempotent and its locks make sure one
 * worker runs a job at a time.
 */
export class BullMqJobRunner implements JobRunner {
  readonly kind = "bullmq" as const;
  /** Commands (queues, group index). */
  private readonly connection: Redis;
  private readonly queues = new Map<string, Queue>();
  private readonly workers = new Map<string, Worker>();
  private readonly closing = new AbortController();

  constructor(private readonly options: BullMqRunnerOptions) {
    // BullMQ requires maxRetriesPerRequest: null on connections its workers block on.
    this.connection = new Redis(options.redisUrl, { maxRetriesPerRequest: null, lazyConnect: false });
    this.connection.on("error", () => {}); // reconnects by itself; errors surface on commands
  }

  async enqueue<P>(
    type: JobType<P>,
    payload: P,
    opts: EnqueueOptions,
  ): Promise<{ jobId: string; added: boolean }> {
    assertJobId(opts.jobId);
    const data = type.payload.parse(payload);
    const queue = this.queue(type);
    // BullMQ ignores an add whose id exists; this read only tells the caller which case it was.
    const existed = (await queue.getJob(opts.jobId)) !== undefined;
    const retainSeconds = Math.ceil(type.retainMs / 1000);
    await queue.add(type.name, data, {
      jobId: opts.jobId,
      delay: Math.max(0, opts.delayMs ?? 0),
      attempts: type.attempts,
      backoff: { type: "exponential", delay: type.backoffMs },
      removeOnComplete: { age: retainSeconds },
      removeOnFail: { age: retainSeconds },
    });
    if (opts.group && !existed) {
      const key = this.groupKey(opts.group);
      await this.connection
        .multi()
        .zadd(key, Date.now(), `${type.name}|${opts.jobId}`)
        .zremrangebyrank(key, 0, -(GROUP_LIMIT + 1))
        .expire(key, GROUP_TTL_SECONDS)
        .exec();
    }
    return { jobId: opts.jobId, added: !existed };
  }

  async get(type: JobType<unknown>, jobId: string): Promise<JobInfo | null> {
    const job = (await this.queue(type).getJob(jobId)) as Job | undefined;
    return job ? this.describe(type, job) : null;
  }

  async listGroup(group: string, limit = GROUP_LIMIT): Promise<JobInfo[]> {
    const members = await this.connection.zrevrange(this.groupKey(group), 0, GROUP_LIMIT - 1);
    const out: JobInfo[] = [];
    for (const member of members) {
      const sep = member.indexOf("|");
      const typeName = member.slice(0, sep);
      const jobId = member.slice(sep + 1);
      const queue = this.queues.get(typeName) ?? this.queueByName(typeName);
      const job = (await queue.getJob(jobId)) as Job | undefined;
      if (job) out.push(await this.describe({ name: typeName, attempts: job.opts.attempts ?? 1 }, job));
      if (out.length >= limit) break;
    }
    return out;
  }

  async cancel(type: JobType<unknown>, jobId: string): Promise<boolean> {
    const job = (await this.queue(type).getJob(jobId)) as Job | undefined;
    if (!job) return false;
    const state = await job.getState();
    if (state !== "delayed" && state !== "waiting" && state !== "prioritized") return false;
    try {
      await job.remove();
      return true;
    } catch {
      return false; // it started meanwhile (locked)
    }
  }

  async work<P>(type: JobType<P>, handler: JobHandler<P>): Promise<void> {
    if (this.workers.has(type.name)) throw new Error(`A handler for ${type.name} jobs is already registered`);
    const worker = new Worker(
      type.name,
      async (job: Job) => {
        try {
          return (
            (await runTry(type, handler, job.data, {
              jobId: job.id ?? "",
              attempt: job.attemptsMade + 1,
              closing: this.closing.signal,
            })) ?? null
          );
        } catch (error) {
          if (error instanceof PermanentJobError) throw new UnrecoverableError(error.message);
          throw error;
        }
      },
      {
        connection: this.connection,
        prefix: this.options.prefix,
        concurrency: type.concurrency,
        // The lock must outlive a try, or BullMQ would hand a slow job to a second worker.
        lockDuration: Math.max(30_000, type.timeoutMs + 10_000),
        // Short blocking waits so close() returns promptly.
        drainDelay: 1,
      },
    );
    worker.on("error", () => {}); // connection blips: BullMQ retries on its own
    this.workers.set(type.name, worker);
    await worker.waitUntilReady();
  }

  async close(): Promise<void> {
    this.closing.abort();
    await Promise.allSettled([...this.workers.values()].map((w) => w.close()));
    await Promise.allSettled([...this.queues.values()].map((q) => q.close()));
    this.workers.clear();
    this.queues.clear();
    // Connections passed in are not closed by BullMQ's close().
    await this.connection.quit().catch(() => this.connection.disconnect());
  }

  private queue(type: Pick<JobType<unknown>, "name">): Queue {
    return this.queueByName(type.name);
  }

  private queueByName(name: string): Queue {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new Queue(name, { connection: this.connection, prefix: this.options.prefix });
      queue.on("error", () => {});
      this.queues.set(name, queue);
    }
    return queue;
  }

  private groupKey(group: string): string {
    return `${this.options.prefix}:gatehouse-job-groups:${group}`;
  }

  private async describe(type: { name: string; attempts: number }, fetched: Job): Promise<JobInfo> {
    let job = fetched;
    const raw = await job.getState();
    // The hash was read before the state: a job that finished in between needs its final fields.
    if ((raw === "completed" || raw === "failed") && !job.finishedOn) {
      job = ((await this.queueByName(type.name).getJob(job.id ?? "")) as Job | undefined) ?? job;
    }
    const state: JobState =
      raw === "completed" || raw === "failed" || raw === "delayed" || raw === "active" ? raw : "waiting";
    const runAt = state === "delayed" || state === "waiting" ? job.timestamp + (job.delay ?? 0) : null;
    return {
      id: job.id ?? "",
      type: type.name,
      state,
      attemptsMade: job.attemptsMade + (state === "active" ? 1 : 0),
      maxAttempts: job.opts.attempts ?? type.attempts,
      createdAt: new Date(job.timestamp).toISOString(),
      runAt: runAt === null ? null : new Date(runAt).toISOString(),
      finishedAt: job.finishedOn ? new Date(job.finishedOn).toISOString() : null,
      error: job.failedReason ? job.failedReason : null,
      result: job.returnvalue ?? null,
    };
  }
}
