import { Module } from "@nestjs/common";
import { UpstreamTestController } from "./upstream-test.controller.js";
import { UpstreamTestService } from "./upstream-test.service.js";

@Module({ controllers: [UpstreamTestController], providers: [UpstreamTestService] })
export class UpstreamTestModule {}
