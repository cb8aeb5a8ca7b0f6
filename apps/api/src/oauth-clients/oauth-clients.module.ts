import { Module } from "@nestjs/common";
import { OAuthModule } from "../oauth/oauth.module.js";
import { OAuthClientsController } from "./oauth-clients.controller.js";
import { OAuthClientsService } from "./oauth-clients.service.js";

@Module({
  imports: [OAuthModule],
  controllers: [OAuthClientsController],
  providers: [OAuthClientsService],
  exports: [OAuthClientsService],
})
export class OAuthClientsModule {}
