import { Module } from "@nestjs/common";
import { GatewaysController } from "./gateways.controller.js";
import { GatewaysService } from "./gateways.service.js";

@Module({ controllers: [GatewaysController], providers: [GatewaysService] })
export class GatewaysModule {}
