import {
  type OAuthClientCreate,
  OAuthClientCreateSchema,
  type OAuthClientUpdate,
  OAuthClientUpdateSchema,
  OAuthClientViewSchema,
  type PaginationQuery,
  PaginationQuerySchema,
} from "@gatehouse/shared";
import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Patch, Post, Query } from "@nestjs/common";
import { ApiBody, ApiOperation, ApiResponse, ApiTags } from "@nestjs/swagger";
import { z } from "zod";
import { type Caller, CallerParam } from "../common/caller.js";
import {
  Authenticated,
  PaginationQueryDocs,
  PathParam,
  ProblemResponses,
  TenantParam,
} from "../common/openapi.js";
import { ZodBody, ZodQuery } from "../common/validation.js";
import { OAuthClientsService } from "./oauth-clients.service.js";

const IdParam = () => PathParam("id", "The OAuth client's id or name");
const doc = (schema: z.ZodType, io: "input" | "output" = "output") =>
  z.toJSONSchema(schema, { target: "openapi-3.0", io, unrepresentable: "any" }) as Record<string, unknown>;
const ClientView = doc(OAuthClientViewSchema);

@ApiTags("oauth clients")
@Authenticated()
@TenantParam()
@Controller("v1/tenants/:tenant/oauth-clients")
export class OAuthClientsController {
  constructor(@Inject(OAuthClientsService) private readonly clients: OAuthClientsService) {}

  @Post()
  @ApiOperation({
    summary: "Register an OAuth client Gatehouse uses toward an upstream's authorization server",
    description:
      "Give an `issuer` (discovered with OpenID Connect discovery or RFC 8414) or explicit endpoints. The secret is sealed at rest and never returned. `extraParams` are added to authorization requests (`resource` and `audience` also to token requests).",
  })
  @ApiBody({ required: true, schema: doc(OAuthClientCreateSchema, "input") })
  @ApiResponse({ status: 201, schema: ClientView })
  @ProblemResponses(400, 403, 404, 409, 422)
  create(
    @CallerParam() caller: Caller,
    @Param("tenant") tenant: string,
    @Body(new ZodBody(OAuthClientCreateSchema)) body: OAuthClientCreate,
  ) {
    return this.clients.create(caller, tenant, body);
  }

  @Get()
  @ApiOperation({ summary: "List OAuth clients" })
  @PaginationQueryDocs()
  @ApiResponse({
    status: 200,
    schema: {
      type: "object",
      properties: {
        items: { type: "array", items: ClientView },
        nextCursor: { type: "string", nullable: true },
      },
    },
  })
  @ProblemResponses(400, 404)
  list(
    @CallerParam() caller: Caller,
    @Param("tenant") tenant: string,
    @Query(new ZodQuery(PaginationQuerySchema)) query: PaginationQuery,
  ) {
    return this.clients.list(caller, tenant, query);
  }

  @Get(":id")
  @ApiOperation({ summary: "Get an OAuth client" })
  @IdParam()
  @ApiResponse({ status: 200, schema: ClientView })
  @ProblemResponses(404)
  get(@CallerParam() caller: Caller, @Param("tenant") tenant: string, @Param("id") id: string) {
    return this.clients.get(caller, tenant, id);
  }

  @Patch(":id")
  @ApiOperation({
    summary: "Change an OAuth client (credentials that failed with it are retried)",
    description: "Only the fields sent change; `clientSecret: null` removes the secret.",
  })
  @IdParam()
  @ApiBody({ required: true, schema: doc(OAuthClientUpdateSchema, "input") })
  @ApiResponse({ status: 200, schema: ClientView })
  @ProblemResponses(400, 403, 404, 409, 422)
  update(
    @CallerParam() caller: Caller,
    @Param("tenant") tenant: string,
    @Param("id") id: string,
    @Body(new ZodBody(OAuthClientUpdateSchema)) body: OAuthClientUpdate,
  ) {
    return this.clients.update(caller, tenant, id, body);
  }

  @Delete(":id")
  @HttpCode(204)
  @ApiOperation({ summary: "Delete an OAuth client (409 while upstreams use it)" })
  @IdParam()
  @ProblemResponses(403, 404, 409)
  async remove(
    @CallerParam() caller: Caller,
    @Param("tenant") tenant: string,
    @Param("id") id: string,
  ): Promise<void> {
    await this.clients.remove(caller, tenant, id);
  }
}
