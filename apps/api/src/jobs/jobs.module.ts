import { Global, Inject, Injectable, Module, type OnApplicationShutdown } from "@nestjs/common";
import { API_CONFIG } from "../common/tokens.js";
import type { ApiConfig } from "../config/api.config.js";
import { BullMqJobRunner } from "./bullmq.runner.js";
import { InProcessJobRunner } from "./in-process.runner.js";
import type { JobRunner } from "./job.types.js";
import { JOB_RUNNER } from "./jobs.tokens.js";

/** BullMQ when REDIS_URL is set (distributed), the in-process runner otherwise (embedded). */
export function createJobRunner(config: Pick<ApiConfig, "REDIS_URL" | "REDIS_KEY_PREFIX">): JobRunner {
  return config.REDIS_URL
    ? new BullMqJobRunner({ redisUrl: config.REDIS_URL, prefix: `${config.REDIS_KEY_PREFIX}bull` })
    : new InProcessJobRunner();
}

@Injectable()
class JobRunnerLifecycle implements OnApplicationShutdown {
  constructor(@Inject(JOB_RUNNER) private readonly runner: JobRunner) {}

  async onApplicationShutdown(): Promise<void> {
    await this.runner.close();
  }
}

/** Provides `JOB_RUNNER` to the whole app and closes it on shutdown. */
@Global()
@Module({
  providers: [
    { provide: JOB_RUNNER, useFactory: (config: ApiConfig) => createJobRunner(config), inject: [API_CONFIG] },
    JobRunnerLifecycle,
  ],
  exports: [JOB_RUNNER],
})
export class JobsModule {}
