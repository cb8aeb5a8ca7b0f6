import type { z } from "zod";

/**
 * A kind of background job: its payload schema and its delivery rules. Both runners (BullMQ in
 * distributed mode, in-process in embedded mode) honour the same rules.
 */
export interface JobType<P> {
  /** Queue name: lowercase letters, digits and `-`. */
  readonly name: string;
  readonly payload: z.ZodType<P>;
  /** Total tries, the first included. */
  readonly attempts: number;
  /** Retry n waits `backoffMs * 2^(n-1)`. */
  readonly backoffMs: number;
  /** A try that runs longer fails (and its signal is aborted). */
  readonly timeoutMs: number;
  /** Jobs of this type run at once in one process. */
  readonly concurrency: number;
  /**
   * How long a finished job is remembered. While remembered its id cannot be enqueued again
   * (deduplication) and its outcome is shown by the API.
   */
  readonly retainMs: number;
}

const NAME = /^[a-z0-9][a-z0-9-]*$/;
/** Job ids: no `:` (BullMQ reserves it), nothing that needs escaping. */
const JOB_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

export function defineJob<P>(
  def: Pick<JobType<P>, "name" | "payload"> & Partial<Omit<JobType<P>, "name" | "payload">>,
): JobType<P> {
  if (!NAME.test(def.name)) throw new Error(`Invalid job type name "${def.name}"`);
  return {
    attempts: 5,
    backoffMs: 1_000,
    timeoutMs: 30_000,
    concurrency: 4,
    retainMs: 24 * 3600_000,
    ...def,
  };
}

export function assertJobId(jobId: string): void {
  if (!JOB_ID.test(jobId))
    throw new Error(`Invalid job id "${jobId}": use letters, digits, '.', '_' and '-'`);
}

export interface EnqueueOptions {
  /**
   * Deterministic id: while a job with this id is waiting, delayed, running or still remembered
   * after finishing, enqueueing it again does nothing. This is how many API nodes and workers
   * agree on one refresh per credential.
   */
  jobId: string;
  delayMs?: number;
  /** Index the job under this key (e.g. `credential.<id>`) so the API can show it. */
  group?: string;
}

export type JobState = "waiting" | "delayed" | "active" | "completed" | "failed";

/** What the API shows of a job. */
export interface JobInfo {
  id: string;
  type: string;
  state: JobState;
  /** Tries made so far (a running try included). */
  attemptsMade: number;
  maxAttempts: number;
  createdAt: string;
  /** When it is due (delayed jobs, retries). */
  runAt: string | null;
  finishedAt: string | null;
  /** The last failure's message. */
  error: string | null;
  result: unknown;
}

export interface JobContext {
  jobId: string;
  /** 1 for the first try. */
  attempt: number;
  /** Aborted when the try times out or the runner closes. */
  signal: AbortSignal;
}

export type JobHandler<P> = (payload: P, ctx: JobContext) => Promise<unknown>;

/** Throw this from a handler for a failure that retrying cannot fix. */
export class PermanentJobError extends Error {
  override name = "PermanentJobError";
}

export class JobTimeoutError extends Error {
  override name = "JobTimeoutError";
}

export interface JobRunner {
  readonly kind: "bullmq" | "in-process";
  /** Validates the payload and adds the job unless one with the same id is known. */
  enqueue<P>(type: JobType<P>, payload: P, opts: EnqueueOptions): Promise<{ jobId: string; added: boolean }>;
  get(type: JobType<unknown>, jobId: string): Promise<JobInfo | null>;
  /** Jobs indexed under `group`, newest first. */
  listGroup(group: string, limit?: number): Promise<JobInfo[]>;
  /** Removes a job that has not started; false if it is running or unknown. */
  cancel(type: JobType<unknown>, jobId: string): Promise<boolean>;
  /** Starts running jobs of this type in this process. */
  work<P>(type: JobType<P>, handler: JobHandler<P>): Promise<void>;
  /** Stops taking jobs, aborts and waits for running ones, releases connections. */
  close(): Promise<void>;
}

/** Runs one try: validates the payload, enforces the timeout. Shared by both runners. */
export async function runTry<P>(
  type: JobType<P>,
  handler: JobHandler<P>,
  rawPayload: unknown,
  ctx: { jobId: string; attempt: number; closing?: AbortSignal },
): Promise<unknown> {
  const parsed = type.payload.safeParse(rawPayload);
  if (!parsed.success) {
    throw new PermanentJobError(
      `Invalid ${type.name} payload: ${parsed.error.issues.map((i) => i.message).join("; ")}`,
    );
  }
  const controller = new AbortController();
  const onClose = () => controller.abort(new Error("The job runner is closing"));
  ctx.closing?.addEventListener("abort", onClose, { once: true });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new JobTimeoutError(`${type.name} job ${ctx.jobId} timed out after ${type.timeoutMs} ms`);
      controller.abort(error);
      reject(error);
    }, type.timeoutMs);
  });
  try {
    return await Promise.race([
      handler(parsed.data, { jobId: ctx.jobId, attempt: ctx.attempt, signal: controller.signal }),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
    ctx.closing?.removeEventListener("abort", onClose);
  }
}

/** Delay before retry number `retry` (1-based). */
export function backoffDelay(type: JobType<unknown>, retry: number): number {
  return type.backoffMs * 2 ** (retry - 1);
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
