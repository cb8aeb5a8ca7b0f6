import { type DynamicModule, Module } from "@nestjs/common";
import { AdminTokensModule } from "./admin-tokens/admin-tokens.module.js";
import { ApiKeysModule } from "./api-keys/api-keys.module.js";
import { AuditModule } from "./audit/audit.module.js";
import { AuthModule } from "./auth/auth.module.js";
import { type CoreDeps, coreModule } from "./common/core.module.js";
import { GatewaysModule } from "./gateways/gateways.module.js";
import { HealthModule } from "./health/health.module.js";
import { IdentityProvidersModule } from "./identity-providers/identity-providers.module.js";
import { MembersModule } from "./members/members.module.js";
import { UpstreamOAuthModule } from "./oauth/upstream-oauth.module.js";
import { PolicyModule } from "./policy/policy.module.js";
import { TenantsModule } from "./tenants/tenants.module.js";
import { UpstreamTestModule } from "./upstream-test/upstream-test.module.js";
import { UpstreamsModule } from "./upstreams/upstreams.module.js";

@Module({})
export class AppModule {}

export function appModule(deps: CoreDeps): DynamicModule {
  return {
    module: AppModule,
    imports: [
      coreModule(deps),
      HealthModule,
      TenantsModule,
      UpstreamsModule,
      ApiKeysModule,
      IdentityProvidersModule,
      PolicyModule,
      AdminTokensModule,
      AuditModule,
      GatewaysModule,
      UpstreamOAuthModule,
      AuthModule,
      MembersModule,
      UpstreamTestModule,
    ],
  };
}
