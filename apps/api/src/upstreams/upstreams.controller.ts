import {
  type PaginationQuery,
  PaginationQuerySchema,
  type ToolsPageQuery,
  ToolsPageQuerySchema,
  type UpstreamCreate,
  UpstreamCreateSchema,
  type UpstreamUpdate,
  UpstreamUpdateSchema,
} from "@gatehouse/shared";
import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Patch, Post, Query } from "@nestjs/common";
import { ApiOperation, ApiQuery, ApiResponse, ApiTags } from "@nestjs/swagger";
import { type Caller, CallerParam } from "../common/caller.js";
import {
  Authenticated,
  JsonBody,
  JsonResponse,
  PageResponse,
  PaginationQueryDocs,
  PathParam,
  ProblemResponses,
  TenantParam,
} from "../common/openapi.js";
import { ZodBody, ZodQuery } from "../common/validation.js";
import { UpstreamsService } from "./upstreams.service.js";

const NameParam = () => PathParam("name", "The upstream's name");

@ApiTags("upstreams")
@Authenticated()
@TenantParam()
@Controller("v1/tenants/:tenant/upstreams")
export class UpstreamsController {
  constructor(@Inject(UpstreamsService) private readonly upstreams: UpstreamsService) {}

  @Post()
  @ApiOperation({
    summary: "Add an upstream MCP server",
    description:
      '`url` is required for `streamable-http` and `sse`, `command` for `stdio`. `toolPrefix` defaults to `name + "_"`. Header, env and auth secrets are sealed at rest and shown masked.',
  })
  @JsonBody("UpstreamCreate")
  @JsonResponse(201, "Upstream")
  @ProblemResponses(400, 403, 404, 409)
  create(
    @CallerParam() caller: Caller,
    @Param("tenant") tenant: string,
    @Body(new ZodBody(UpstreamCreateSchema)) body: UpstreamCreate,
  ) {
    return this.upstreams.create(caller, tenant, body);
  }

  @Get()
  @ApiOperation({ summary: "List upstreams" })
  @PaginationQueryDocs()
  @PageResponse("Upstream")
  @ProblemResponses(400, 404)
  list(
    @CallerParam() caller: Caller,
    @Param("tenant") tenant: string,
    @Query(new ZodQuery(PaginationQuerySchema)) query: PaginationQuery,
  ) {
    return this.upstreams.list(caller, tenant, query);
  }

  @Get(":name")
  @ApiOperation({ summary: "Get an upstream" })
  @NameParam()
  @JsonResponse(200, "Upstream")
  @ProblemResponses(404)
  get(@CallerParam() caller: Caller, @Param("tenant") tenant: string, @Param("name") name: string) {
    return this.upstreams.get(caller, tenant, name);
  }

  @Get(":name/tools")
  @ApiOperation({
    summary: "The tools the upstream offers, as last discovered (unprefixed)",
    description:
      '`{items, nextCursor}` like every list, in name order; no items before the first discovery. Policy rules match these names (`tools: ["get-*"]`), not the prefixed ones agents see.',
  })
  @NameParam()
  @ApiQuery({
    name: "limit",
    required: false,
    schema: { type: "integer", minimum: 1, maximum: 200, default: 100 },
  })
  @ApiQuery({
    name: "cursor",
    required: false,
    description: "`nextCursor` of the previous page (the last tool name seen)",
    schema: { type: "string" },
  })
  @ApiResponse({
    status: 200,
    description: "One page of discovered tools, in name order",
    schema: {
      type: "object",
      required: ["items", "nextCursor"],
      properties: {
        items: { type: "array", items: { $ref: "#/components/schemas/DiscoveredTool" } },
        nextCursor: { type: "string", nullable: true, description: "Pass as `cursor` for the next page" },
      },
    },
  })
  @ProblemResponses(400, 404)
  tools(
    @CallerParam() caller: Caller,
    @Param("tenant") tenant: string,
    @Param("name") name: string,
    @Query(new ZodQuery(ToolsPageQuerySchema)) query: ToolsPageQuery,
  ) {
    return this.upstreams.tools(caller, tenant, name, query);
  }

  @Patch(":name")
  @ApiOperation({
    summary: "Change an upstream",
    description: `Only the fields sent change; \`null\` clears. A secret sent back as the mask "********" keeps its stored value.`,
  })
  @NameParam()
  @JsonBody("UpstreamUpdate")
  @JsonResponse(200, "Upstream")
  @ProblemResponses(400, 403, 404, 409)
  update(
    @CallerParam() caller: Caller,
    @Param("tenant") tenant: string,
    @Param("name") name: string,
    @Body(new ZodBody(UpstreamUpdateSchema)) body: UpstreamUpdate,
  ) {
    return this.upstreams.update(caller, tenant, name, body);
  }

  @Delete(":name")
  @HttpCode(204)
  @ApiOperation({ summary: "Remove an upstream" })
  @NameParam()
  @ProblemResponses(403, 404)
  async remove(@CallerParam() caller: Caller, @Param("tenant") tenant: string, @Param("name") name: string) {
    await this.upstreams.remove(caller, tenant, name);
  }
}
