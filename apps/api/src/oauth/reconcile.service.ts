import type { PrismaClient, Upstream } from "@gatehouse/db";
import { isOAuthAuthMode, oauthGrantOf, readOAuthAuthConfig } from "@gatehouse/shared";
import { Inject, Injectable } from "@nestjs/common";
import type { Logger } from "pino";
import { LOGGER, PRISMA } from "../common/tokens.js";
import type { JobRunner } from "../jobs/job.types.js";
import { JOB_RUNNER } from "../jobs/jobs.tokens.js";
import { ConnectService } from "./connect.service.js";
import { CredentialsService } from "./credentials.service.js";
import type { OAuthSettings } from "./oauth.config.js";
import { UpstreamDiscoveryJob, UpstreamHealthJob, upstreamGroup } from "./oauth.jobs.js";
import { OAUTH_SETTINGS } from "./oauth.tokens.js";
import { refreshAt } from "./refresh-schedule.js";

/** A scheduled refresh gets this long to start before reconcile steps in. */
const OVERDUE_GRACE_MS = 5_000;
/** Jitter spreads the probes of one interval over at most this much of it. */
const MAX_JITTER_MS = 60_000;

export interface ReconcileSummary {
  credentialsScheduled: number;
  credentialsOverdue: number;
  clientCredentialsStarted: number;
  discoveriesQueued: number;
  healthChecksQueued: number;
  statesPurged: number;
}

/**
 * Makes the jobs match the database: every expiring credential has its refresh scheduled (an
 * overdue one gets one now), every client-credentials upstream has a credential, every enabled
 * HTTP upstream gets one discovery and one health probe per interval (ids per interval bucket,
 * so any number of workers enqueue each once). Safe to run anywhere, any time, concurrently.
 */
@Injectable()
export class ReconcileService {
  constructor(
    @Inject(PRISMA) private readonly prisma: PrismaClient,
    @Inject(JOB_RUNNER) private readonly jobs: JobRunner,
    @Inject(CredentialsService) private readonly credentials: CredentialsService,
    @Inject(ConnectService) private readonly connect: ConnectService,
    @Inject(OAUTH_SETTINGS) private readonly settings: OAuthSettings,
    @Inject(LOGGER) private readonly log: Logger,
  ) {}

  /** One tenant (after a config change: probes run now) or all of them (periodic). */
  async run(tenantId?: string): Promise<ReconcileSummary> {
    const summary: ReconcileSummary = {
      credentialsScheduled: 0,
      credentialsOverdue: 0,
      clientCredentialsStarted: 0,
      discoveriesQueued: 0,
      healthChecksQueued: 0,
      statesPurged: 0,
    };
    const now = Date.now();

    const creds = await this.prisma.upstreamCredential.findMany({
      where: { ...(tenantId ? { tenantId } : {}), status: { not: "needs_reconnect" } },
    });
    for (const cred of creds) {
      if (!cred.accessTokenSealed) {
        // A client-credentials credential that never got its first token.
        await this.credentials.enqueueNow(cred);
        summary.credentialsOverdue += 1;
        continue;
      }
      if (!cred.expiresAt) continue;
      await this.credentials.schedule(cred);
      summary.credentialsScheduled += 1;
      const due = refreshAt((cred.lastRefreshAt ?? cred.updatedAt).getTime(), cred.expiresAt.getTime());
      if (now > due + OVERDUE_GRACE_MS) {
        await this.credentials.enqueueNow(cred);
        summary.credentialsOverdue += 1;
      }
    }

    const upstreams = await this.prisma.upstream.findMany({
      where: { ...(tenantId ? { tenantId } : {}), enabled: true },
      include: { tenant: { select: { configVersion: true } }, credentials: { select: { subject: true } } },
    });
    for (const upstream of upstreams) {
      if (this.needsClientCredentials(upstream, upstream.credentials)) {
        const cred = await this.credentials.ensureCredentialRow(upstream, "");
        await this.credentials.enqueueNow(cred);
        summary.clientCredentialsStarted += 1;
      }
      if (upstream.transport === "stdio" || !upstream.url) continue;
      const group = upstreamGroup(upstream.id);
      // After a config change, probe now (ids per config version); otherwise once per interval.
      const discoverId = tenantId
        ? `discover.${upstream.id}.v${upstream.tenant.configVersion}`
        : `discover.${upstream.id}.${Math.floor(now / this.settings.discoveryIntervalMs)}`;
      const healthId = tenantId
        ? `health.${upstream.id}.v${upstream.tenant.configVersion}`
        : `health.${upstream.id}.${Math.floor(now / this.settings.healthIntervalMs)}`;
      const d = await this.jobs.enqueue(
        UpstreamDiscoveryJob,
        { upstreamId: upstream.id },
        { jobId: discoverId, group, delayMs: tenantId ? 0 : jitter(this.settings.discoveryIntervalMs) },
      );
      const h = await this.jobs.enqueue(
        UpstreamHealthJob,
        { upstreamId: upstream.id },
        { jobId: healthId, group, delayMs: tenantId ? 0 : jitter(this.settings.healthIntervalMs) },
      );
      if (d.added) summary.discoveriesQueued += 1;
      if (h.added) summary.healthChecksQueued += 1;
    }

    if (!tenantId) summary.statesPurged = await this.connect.purgeExpired();
    if (summary.credentialsOverdue || summary.clientCredentialsStarted) {
      this.log.info({ tenantId, ...summary }, "reconcile queued missing token jobs");
    }
    return summary;
  }

  private needsClientCredentials(upstream: Upstream, credentials: Array<{ subject: string }>): boolean {
    if (!isOAuthAuthMode(upstream.authMode)) return false;
    if (oauthGrantOf(upstream.authMode, readOAuthAuthConfig(upstream.authConfig)) !== "client_credentials")
      return false;
    return !credentials.some((c) => c.subject === "");
  }
}

function jitter(intervalMs: number): number {
  return Math.floor(Math.random() * Math.min(intervalMs / 4, MAX_JITTER_MS));
}
