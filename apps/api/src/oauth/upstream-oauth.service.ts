import type { OAuthClient, PrismaClient, Upstream } from "@gatehouse/db";
import {
  AppError,
  type ConnectRequest,
  ErrorCode,
  isOAuthAuthMode,
  oauthGrantOf,
  readOAuthAuthConfig,
  type UpstreamCredentialView,
} from "@gatehouse/shared";
import { Inject, Injectable } from "@nestjs/common";
import { type Caller, describeCaller } from "../common/caller.js";
import { TenantAccessService } from "../common/tenant-access.service.js";
import { PRISMA } from "../common/tokens.js";
import type { JobInfo, JobRunner } from "../jobs/job.types.js";
import { JOB_RUNNER } from "../jobs/jobs.tokens.js";
import { ConnectService, type ConnectStart } from "./connect.service.js";
import { CredentialsService } from "./credentials.service.js";
import { upstreamGroup } from "./oauth.jobs.js";

type UpstreamWithClient = Upstream & { oauthClient: OAuthClient | null };

/** The REST side of upstream OAuth: connect, credentials, jobs; permission checks included. */
@Injectable()
export class UpstreamOAuthService {
  constructor(
    @Inject(PRISMA) private readonly prisma: PrismaClient,
    @Inject(TenantAccessService) private readonly access: TenantAccessService,
    @Inject(ConnectService) private readonly connect: ConnectService,
    @Inject(CredentialsService) private readonly credentials: CredentialsService,
    @Inject(JOB_RUNNER) private readonly jobs: JobRunner,
  ) {}

  async startConnect(
    caller: Caller,
    tenantRef: string,
    name: string,
    body: ConnectRequest,
  ): Promise<ConnectStart> {
    const upstream = await this.upstream(caller, tenantRef, name, "write");
    return this.connect.start(upstream, {
      subject: body.subject,
      returnTo: body.returnTo,
      createdBy: describeCaller(caller),
    });
  }

  async listCredentials(
    caller: Caller,
    tenantRef: string,
    name: string,
  ): Promise<{ items: UpstreamCredentialView[] }> {
    const upstream = await this.upstream(caller, tenantRef, name, "read");
    const rows = await this.prisma.upstreamCredential.findMany({
      where: { upstreamId: upstream.id },
      orderBy: [{ subject: "asc" }],
    });
    return { items: await Promise.all(rows.map((row) => this.credentials.view(row))) };
  }

  /** Queues an immediate refresh (or the first client-credentials token). */
  async refreshNow(
    caller: Caller,
    tenantRef: string,
    name: string,
    subject = "",
  ): Promise<{ credentialId: string; jobId: string }> {
    const upstream = await this.upstream(caller, tenantRef, name, "write");
    if (!isOAuthAuthMode(upstream.authMode)) {
      throw new AppError(
        ErrorCode.UNPROCESSABLE,
        `Upstream ${name} does not use OAuth (auth mode ${upstream.authMode})`,
      );
    }
    const grant = oauthGrantOf(upstream.authMode, readOAuthAuthConfig(upstream.authConfig));
    let cred = await this.prisma.upstreamCredential.findUnique({
      where: { upstreamId_subject: { upstreamId: upstream.id, subject } },
    });
    if (!cred && grant === "client_credentials" && subject === "") {
      cred = await this.credentials.ensureCredentialRow(upstream, "");
    }
    if (!cred) {
      throw new AppError(
        ErrorCode.NOT_FOUND,
        `No credential${subject ? ` for ${subject}` : ""} on upstream ${name}: connect an account first`,
      );
    }
    if (cred.status === "needs_reconnect" && grant === "authorization_code") {
      // 422, not 401: the admin's own token is fine, the upstream account is not.
      throw new AppError(
        ErrorCode.UNPROCESSABLE,
        `The credential needs to be reconnected (${cred.lastRefreshError ?? "refresh refused"}): connect the account again (POST …/connect as a tenant admin; a per-user principal also gets a link of its own on its next call)`,
      );
    }
    if (cred.status === "needs_reconnect") {
      await this.prisma.upstreamCredential.update({ where: { id: cred.id }, data: { status: "error" } });
    }
    const { jobId } = await this.credentials.enqueueNow(cred, { fresh: true });
    return { credentialId: cred.id, jobId };
  }

  async disconnect(caller: Caller, tenantRef: string, name: string, credentialId: string): Promise<void> {
    const upstream = await this.upstream(caller, tenantRef, name, "write");
    const cred = await this.prisma.upstreamCredential.findFirst({
      where: { id: credentialId, upstreamId: upstream.id },
    });
    if (!cred)
      throw new AppError(ErrorCode.NOT_FOUND, `Credential '${credentialId}' not found on upstream ${name}`);
    await this.credentials.remove(cred);
  }

  /** Discovery and health jobs of the upstream, newest first, with its last results. */
  async upstreamJobs(
    caller: Caller,
    tenantRef: string,
    name: string,
  ): Promise<{
    health: string | null;
    healthCheckedAt: string | null;
    toolsDiscoveredAt: string | null;
    jobs: JobInfo[];
  }> {
    const upstream = await this.upstream(caller, tenantRef, name, "read");
    return {
      health: upstream.health,
      healthCheckedAt: upstream.healthCheckedAt?.toISOString() ?? null,
      toolsDiscoveredAt: upstream.toolsDiscoveredAt?.toISOString() ?? null,
      jobs: await this.jobs.listGroup(upstreamGroup(upstream.id)),
    };
  }

  private async upstream(
    caller: Caller,
    tenantRef: string,
    name: string,
    need: "read" | "write",
  ): Promise<UpstreamWithClient> {
    const tenant = await this.access.resolve(caller, tenantRef, need);
    const upstream = await this.prisma.upstream.findFirst({
      where: { tenantId: tenant.id, name },
      include: { oauthClient: true },
    });
    if (!upstream) throw new AppError(ErrorCode.NOT_FOUND, `Upstream '${name}' not found`);
    return upstream;
  }
}
