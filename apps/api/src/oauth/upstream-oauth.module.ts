import { Module } from "@nestjs/common";
import { OAuthClientsModule } from "../oauth-clients/oauth-clients.module.js";
import { OAuthModule } from "./oauth.module.js";

/**
 * Everything of issue 5 in one import for AppModule: OAuth clients CRUD, connect and callback,
 * credentials and jobs routes, and (in embedded mode) the background workers.
 */
@Module({ imports: [OAuthModule, OAuthClientsModule], exports: [OAuthModule, OAuthClientsModule] })
export class UpstreamOAuthModule {}
