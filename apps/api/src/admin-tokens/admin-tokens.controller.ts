import {
  type AdminTokenCreate,
  AdminTokenCreateSchema,
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
import { AdminTokensService } from "./admin-tokens.service.js";

@ApiTags("tokens")
@Authenticated()
@TenantParam()
@Controller("v1/tenants/:tenant/tokens")
export class AdminTokensController {
  constructor(@Inject(AdminTokensService) private readonly tokens: AdminTokensService) {}

  @Post()
  @ApiOperation({
    summary: "Create a tenant admin token",
    description:
      "The `token` (`mgt_…`) is returned this once only. It works for this tenant's routes only; roles: viewer (read), admin (write), owner (also delete the tenant).",
  })
  @JsonBody("AdminTokenCreate")
  @JsonResponse(201, "AdminTokenCreated")
  @ProblemResponses(400, 403, 404)
  create(
    @CallerParam() caller: Caller,
    @Param("tenant") tenant: string,
    @Body(new ZodBody(AdminTokenCreateSchema)) body: AdminTokenCreate,
  ) {
    return this.tokens.create(caller, tenant, body);
  }

  @Get()
  @ApiOperation({ summary: "List tenant admin tokens (never the tokens themselves)" })
  @PaginationQueryDocs()
  @PageResponse("AdminToken")
  @ProblemResponses(400, 404)
  list(
    @CallerParam() caller: Caller,
    @Param("tenant") tenant: string,
    @Query(new ZodQuery(PaginationQuerySchema)) query: PaginationQuery,
  ) {
    return this.tokens.list(caller, tenant, query);
  }

  @Delete(":id")
  @HttpCode(204)
  @ApiOperation({ summary: "Revoke a tenant admin token" })
  @PathParam("id", "The token's id")
  @ProblemResponses(403, 404)
  async revoke(@CallerParam() caller: Caller, @Param("tenant") tenant: string, @Param("id") id: string) {
    await this.tokens.revoke(caller, tenant, id);
  }
}
