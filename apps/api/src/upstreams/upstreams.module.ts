import { Module } from "@nestjs/common";
import { OAuthModule } from "../oauth/oauth.module.js";
import { UpstreamsController } from "./upstreams.controller.js";
import { UpstreamsService } from "./upstreams.service.js";

@Module({ imports: [OAuthModule], controllers: [UpstreamsController], providers: [UpstreamsService] })
export class UpstreamsModule {}
