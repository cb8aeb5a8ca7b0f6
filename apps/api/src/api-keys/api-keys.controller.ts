import {
  type ApiKeyCreate,
  ApiKeyCreateSchema,
  type PaginationQuery,
  PaginationQuerySchema,
} from "@gatehouse/shared";
import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Query } from "@nestjs/common";
import { ApiOperation, ApiTags } from "@nestjs/swagger";
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
import { ApiKeysService } from "./api-keys.service.js";

const IdParam = () => PathParam("id", "The API key's id");

@ApiTags("api-keys")
@Authenticated()
@TenantParam()
@Controller("v1/tenants/:tenant/api-keys")
export class ApiKeysController {
  constructor(@Inject(ApiKeysService) private readonly keys: ApiKeysService) {}

  @Post()
  @ApiOperation({
    summary: "Create an agent API key",
    description: "The `key` (`mgw_…`) is returned this once only.",
  })
  @JsonBody("ApiKeyCreate")
  @JsonResponse(201, "ApiKeyCreated")
  @ProblemResponses(400, 403, 404)
  create(
    @CallerParam() caller: Caller,
    @Param("tenant") tenant: string,
    @Body(new ZodBody(ApiKeyCreateSchema)) body: ApiKeyCreate,
  ) {
    return this.keys.create(caller, tenant, body);
  }

  @Get()
  @ApiOperation({ summary: "List API keys (never the keys themselves)" })
  @PaginationQueryDocs()
  @PageResponse("ApiKey")
  @ProblemResponses(400, 404)
  list(
    @CallerParam() caller: Caller,
    @Param("tenant") tenant: string,
    @Query(new ZodQuery(PaginationQuerySchema)) query: PaginationQuery,
  ) {
    return this.keys.list(caller, tenant, query);
  }

  @Get(":id")
  @ApiOperation({ summary: "Get an API key (never the key itself)" })
  @IdParam()
  @JsonResponse(200, "ApiKey")
  @ProblemResponses(404)
  get(@CallerParam() caller: Caller, @Param("tenant") tenant: string, @Param("id") id: string) {
    return this.keys.get(caller, tenant, id);
  }

  @Delete(":id")
  @HttpCode(204)
  @ApiOperation({
    summary: "Revoke an API key",
    description: "Every gateway node refuses the key within a second.",
  })
  @IdParam()
  @ProblemResponses(403, 404)
  async revoke(@CallerParam() caller: Caller, @Param("tenant") tenant: string, @Param("id") id: string) {
    await this.keys.revoke(caller, tenant, id);
  }
}
