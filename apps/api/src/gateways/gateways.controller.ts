import { GatewayNodeViewSchema, GatewaysQuerySchema, pageSchema } from "@gatehouse/shared";
import { Controller, Get, Inject, Query } from "@nestjs/common";
import { ApiOperation, ApiResponse, ApiTags, type SchemaObject } from "@nestjs/swagger";
import { z } from "zod";
import { type Caller, CallerParam } from "../common/caller.js";
import { Authenticated, ProblemResponses } from "../common/openapi.js";
import { ZodQuery } from "../common/validation.js";
import { GatewaysService } from "./gateways.service.js";

const GatewayNodePageOpenApi = z.toJSONSchema(pageSchema(GatewayNodeViewSchema), {
  target: "openapi-3.0",
  io: "output",
}) as SchemaObject;

@ApiTags("gateways")
@Authenticated()
@Controller("v1/gateways")
export class GatewaysController {
  constructor(@Inject(GatewaysService) private readonly gateways: GatewaysService) {}

  @Get()
  @ApiOperation({
    summary: "Live gateway nodes (platform admin only)",
    description:
      "Nodes that heartbeated within the last 15 s (every 5 s by default), newest first, with the config version of each tenant they have applied. A node that stops heartbeating drops out; one that shuts down cleanly leaves at once. Never paged: `nextCursor` is always null.",
  })
  @ApiResponse({ status: 200, description: "Every live node", schema: GatewayNodePageOpenApi })
  @ProblemResponses(400, 403)
  list(@CallerParam() caller: Caller, @Query(new ZodQuery(GatewaysQuerySchema)) _query: unknown) {
    return this.gateways.list(caller);
  }
}
