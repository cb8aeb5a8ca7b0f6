import {
  type TenantCreate,
  TenantCreateSchema,
  type TenantListQuery,
  TenantListQuerySchema,
  type TenantUpdate,
  TenantUpdateSchema,
} from "@gatehouse/shared";
import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Patch, Post, Query } from "@nestjs/common";
import { ApiOperation, ApiQuery, ApiTags } from "@nestjs/swagger";
import { type Caller, CallerParam } from "../common/caller.js";
import {
  Authenticated,
  JsonBody,
  JsonResponse,
  PageResponse,
  PaginationQueryDocs,
  ProblemResponses,
  TenantParam,
} from "../common/openapi.js";
import { ZodBody, ZodQuery } from "../common/validation.js";
import { TenantsService } from "./tenants.service.js";

@ApiTags("tenants")
@Authenticated()
@Controller("v1/tenants")
export class TenantsController {
  constructor(@Inject(TenantsService) private readonly tenants: TenantsService) {}

  @Post()
  @ApiOperation({ summary: "Create a tenant (platform admin only)" })
  @JsonBody("TenantCreate")
  @JsonResponse(201, "Tenant")
  @ProblemResponses(400, 403, 409)
  create(@CallerParam() caller: Caller, @Body(new ZodBody(TenantCreateSchema)) body: TenantCreate) {
    return this.tenants.create(caller, body);
  }

  @Get()
  @ApiOperation({
    summary: "List tenants",
    description:
      "A platform admin sees every tenant; a console member sees the tenants they belong to. Tenant tokens cannot list.",
  })
  @PaginationQueryDocs()
  @ApiQuery({
    name: "q",
    required: false,
    description: "Only tenants whose slug or name contains this",
    schema: { type: "string" },
  })
  @PageResponse("Tenant")
  @ProblemResponses(400, 403)
  list(@CallerParam() caller: Caller, @Query(new ZodQuery(TenantListQuerySchema)) query: TenantListQuery) {
    return this.tenants.list(caller, query);
  }

  @Get(":tenant")
  @ApiOperation({ summary: "Get a tenant" })
  @TenantParam()
  @JsonResponse(200, "Tenant")
  @ProblemResponses(404)
  get(@CallerParam() caller: Caller, @Param("tenant") tenant: string) {
    return this.tenants.get(caller, tenant);
  }

  @Patch(":tenant")
  @ApiOperation({ summary: "Change a tenant's slug, name or settings (settings are merged)" })
  @TenantParam()
  @JsonBody("TenantUpdate")
  @JsonResponse(200, "Tenant")
  @ProblemResponses(400, 403, 404, 409)
  update(
    @CallerParam() caller: Caller,
    @Param("tenant") tenant: string,
    @Body(new ZodBody(TenantUpdateSchema)) body: TenantUpdate,
  ) {
    return this.tenants.update(caller, tenant, body);
  }

  @Delete(":tenant")
  @HttpCode(204)
  @ApiOperation({ summary: "Delete a tenant and everything it owns (platform admin or owner token)" })
  @TenantParam()
  @ProblemResponses(403, 404)
  async remove(@CallerParam() caller: Caller, @Param("tenant") tenant: string): Promise<void> {
    await this.tenants.remove(caller, tenant);
  }
}
