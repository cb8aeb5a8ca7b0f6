import { Module } from "@nestjs/common";
import type { Registry } from "prom-client";
import { API_CONFIG, METRICS, SEALER } from "../common/tokens.js";
import { JobsModule } from "../jobs/jobs.module.js";
import { ConnectService } from "./connect.service.js";
import { CredentialsService } from "./credentials.service.js";
import { McpOAuthService } from "./mcp-oauth.service.js";
import { oauthSettings } from "./oauth.config.js";
import { OAuthPublicController, UpstreamOAuthController } from "./oauth.controllers.js";
import { OAUTH_METRICS, oauthMetrics } from "./oauth.metrics.js";
import { OAUTH_SERVERS, OAUTH_SETTINGS } from "./oauth.tokens.js";
import { OAuthWorkers } from "./oauth.workers.js";
import { OAuthServers } from "./oauth-servers.js";
import { ReconcileService } from "./reconcile.service.js";
import { UpstreamOAuthService } from "./upstream-oauth.service.js";
import { UpstreamProbeService } from "./upstream-probe.service.js";

/**
 * Upstream OAuth: credentials and their refresh, the connect flow, mcp-oauth discovery, tool
 * discovery and health jobs. Needs the app's CoreModule (PRISMA, BUS, SEALER, LOGGER, METRICS,
 * API_CONFIG, TenantAccessService, ConfigVersionService).
 */
@Module({
  imports: [JobsModule],
  controllers: [UpstreamOAuthController, OAuthPublicController],
  providers: [
    {
      provide: OAUTH_SETTINGS,
      useFactory: (config: Record<string, unknown>) => oauthSettings(config),
      inject: [API_CONFIG],
    },
    {
      provide: OAUTH_SERVERS,
      useFactory: (
        sealer: ConstructorParameters<typeof OAuthServers>[0],
        settings: ReturnType<typeof oauthSettings>,
      ) => new OAuthServers(sealer, settings),
      inject: [SEALER, OAUTH_SETTINGS],
    },
    { provide: OAUTH_METRICS, useFactory: (registry: Registry) => oauthMetrics(registry), inject: [METRICS] },
    CredentialsService,
    McpOAuthService,
    ConnectService,
    UpstreamProbeService,
    ReconcileService,
    UpstreamOAuthService,
    OAuthWorkers,
  ],
  exports: [OAUTH_SETTINGS, OAUTH_SERVERS, CredentialsService, McpOAuthService, OAuthWorkers],
})
export class OAuthModule {}
