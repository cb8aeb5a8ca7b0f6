import { type Bus, BusChannel, ConfigEventSchema, CredentialEventSchema } from "@gatehouse/shared";
import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from "@nestjs/common";
import type { Logger } from "pino";
import { BUS, LOGGER } from "../common/tokens.js";
import type { JobRunner } from "../jobs/job.types.js";
import { JOB_RUNNER } from "../jobs/jobs.tokens.js";
import { CredentialsService } from "./credentials.service.js";
import { CredentialRefreshJob, ReconcileJob, UpstreamDiscoveryJob, UpstreamHealthJob } from "./oauth.jobs.js";
import { ReconcileService } from "./reconcile.service.js";
import { UpstreamProbeService } from "./upstream-probe.service.js";

const RECONCILE_EVERY_MS = 60_000;

/**
 * The background side of upstream OAuth: job handlers, the bus listeners (a gateway's
 * `refresh_requested`, config changes) and the periodic reconcile. Started by `worker.ts` in
 * distributed mode; in embedded mode (in-process job runner) it starts with the app.
 */
@Injectable()
export class OAuthWorkers implements OnApplicationBootstrap, OnApplicationShutdown {
  private started = false;
  private every = RECONCILE_EVERY_MS;
  private timer: NodeJS.Timeout | undefined;
  private readonly unsubscribes: Array<() => Promise<void>> = [];

  constructor(
    @Inject(JOB_RUNNER) private readonly jobs: JobRunner,
    @Inject(BUS) private readonly bus: Bus,
    @Inject(CredentialsService) private readonly credentials: CredentialsService,
    @Inject(UpstreamProbeService) private readonly probe: UpstreamProbeService,
    @Inject(ReconcileService) private readonly reconcile: ReconcileService,
    @Inject(LOGGER) private readonly log: Logger,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    if (this.jobs.kind === "in-process") await this.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.stop();
  }

  /** Registers the handlers and listeners of this process. Idempotent. */
  async start(opts: { reconcileEveryMs?: number } = {}): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.jobs.work(CredentialRefreshJob, (p) => this.credentials.refresh(p.credentialId, p.generation));
    await this.jobs.work(UpstreamDiscoveryJob, (p, ctx) => this.probe.discover(p.upstreamId, ctx.signal));
    await this.jobs.work(UpstreamHealthJob, (p, ctx) => this.probe.health(p.upstreamId, ctx.signal));
    await this.jobs.work(ReconcileJob, (p) => this.reconcile.run(p.tenantId));

    this.unsubscribes.push(
      await this.bus.subscribe(BusChannel.credentials, (message) => {
        const parsed = CredentialEventSchema.safeParse(message);
        if (!parsed.success || parsed.data.type !== "refresh_requested") return;
        this.credentials
          .requestRefresh(parsed.data)
          .catch((err: unknown) => this.log.error({ err }, "could not queue a requested token refresh"));
      }),
      await this.bus.subscribe(BusChannel.config, (message) => {
        const parsed = ConfigEventSchema.safeParse(message);
        if (!parsed.success || parsed.data.deleted) return;
        const { tenantId, version } = parsed.data;
        this.jobs
          .enqueue(ReconcileJob, { tenantId }, { jobId: `tenant.${tenantId}.${version}` })
          .catch((err: unknown) => this.log.error({ err, tenantId }, "could not queue a tenant reconcile"));
      }),
    );
    // Missed bus messages heal on the next periodic reconcile.
    this.bus.onReconnect(() => void this.tick());

    const every = opts.reconcileEveryMs ?? RECONCILE_EVERY_MS;
    this.every = every;
    const loop = () => {
      // Jitter so that many workers do not all wake at once (the job id dedupes them anyway).
      this.timer = setTimeout(
        () => {
          void this.tick().finally(() => {
            if (this.started) loop();
          });
        },
        every * (0.8 + Math.random() * 0.4),
      );
      this.timer.unref();
    };
    await this.tick();
    loop();
    this.log.info({ runner: this.jobs.kind }, "upstream OAuth workers started");
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    clearTimeout(this.timer);
    for (const unsubscribe of this.unsubscribes.splice(0)) await unsubscribe().catch(() => {});
  }

  /** Queues the periodic reconcile of every tenant (one per period, whichever worker is first). */
  private async tick(): Promise<void> {
    const period = Math.floor(Date.now() / this.every);
    await this.jobs
      .enqueue(ReconcileJob, {}, { jobId: `all.${this.every}.${period}` })
      .catch((err: unknown) => this.log.error({ err }, "could not queue the periodic reconcile"));
  }
}
