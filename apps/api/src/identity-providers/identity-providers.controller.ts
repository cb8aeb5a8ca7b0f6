import {
  type IdentityProviderCreate,
  IdentityProviderCreateSchema,
  type IdentityProviderUpdate,
  IdentityProviderUpdateSchema,
  type PaginationQuery,
  PaginationQuerySchema,
} from "@gatehouse/shared";
import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Patch, Post, Query } from "@nestjs/common";
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
import { IdentityProvidersService } from "./identity-providers.service.js";

const IdParam = () => PathParam("id", "The identity provider's id");

@ApiTags("identity-providers")
@Authenticated()
@TenantParam()
@Controller("v1/tenants/:tenant/identity-providers")
export class IdentityProvidersController {
  constructor(@Inject(IdentityProvidersService) private readonly idps: IdentityProvidersService) {}

  @Post()
  @ApiOperation({
    summary: "Trust an OIDC issuer for agents' JWTs",
    description:
      "When `jwksUri` is omitted it is discovered from `<issuer>/.well-known/openid-configuration`; 422 when that fails.",
  })
  @JsonBody("IdentityProviderCreate")
  @JsonResponse(201, "IdentityProvider")
  @ProblemResponses(400, 403, 404, 409, 422)
  create(
    @CallerParam() caller: Caller,
    @Param("tenant") tenant: string,
    @Body(new ZodBody(IdentityProviderCreateSchema)) body: IdentityProviderCreate,
  ) {
    return this.idps.create(caller, tenant, body);
  }

  @Get()
  @ApiOperation({ summary: "List identity providers" })
  @PaginationQueryDocs()
  @PageResponse("IdentityProvider")
  @ProblemResponses(400, 404)
  list(
    @CallerParam() caller: Caller,
    @Param("tenant") tenant: string,
    @Query(new ZodQuery(PaginationQuerySchema)) query: PaginationQuery,
  ) {
    return this.idps.list(caller, tenant, query);
  }

  @Get(":id")
  @ApiOperation({ summary: "Get an identity provider" })
  @IdParam()
  @JsonResponse(200, "IdentityProvider")
  @ProblemResponses(404)
  get(@CallerParam() caller: Caller, @Param("tenant") tenant: string, @Param("id") id: string) {
    return this.idps.get(caller, tenant, id);
  }

  @Patch(":id")
  @ApiOperation({ summary: "Change an identity provider" })
  @IdParam()
  @JsonBody("IdentityProviderUpdate")
  @JsonResponse(200, "IdentityProvider")
  @ProblemResponses(400, 403, 404, 409, 422)
  update(
    @CallerParam() caller: Caller,
    @Param("tenant") tenant: string,
    @Param("id") id: string,
    @Body(new ZodBody(IdentityProviderUpdateSchema)) body: IdentityProviderUpdate,
  ) {
    return this.idps.update(caller, tenant, id, body);
  }

  @Delete(":id")
  @HttpCode(204)
  @ApiOperation({ summary: "Remove an identity provider" })
  @IdParam()
  @ProblemResponses(403, 404)
  async remove(@CallerParam() caller: Caller, @Param("tenant") tenant: string, @Param("id") id: string) {
    await this.idps.remove(caller, tenant, id);
  }
}
