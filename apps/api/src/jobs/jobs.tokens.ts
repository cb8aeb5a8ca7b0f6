/** DI token of the app's `JobRunner` (BullMQ with REDIS_URL, in-process without). */
export const JOB_RUNNER = Symbol("JobRunner");
