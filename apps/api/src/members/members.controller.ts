import {
  type MemberCreate,
  MemberCreateSchema,
  type MemberUpdate,
  MemberUpdateSchema,
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
import { MembersService } from "./members.service.js";

@ApiTags("members")
@Authenticated()
@TenantParam()
@Controller("v1/tenants/:tenant/members")
export class MembersController {
  constructor(@Inject(MembersService) private readonly members: MembersService) {}

  @Post()
  @ApiOperation({
    summary: "Invite a member by email",
    description:
      "The invitation binds to the person on their first console sign-in with this verified email (at once if they have signed in before). Nobody can grant a role above their own.",
  })
  @JsonBody("MemberCreate")
  @JsonResponse(201, "Member")
  @ProblemResponses(400, 403, 404, 409)
  create(
    @CallerParam() caller: Caller,
    @Param("tenant") tenant: string,
    @Body(new ZodBody(MemberCreateSchema)) body: MemberCreate,
  ) {
    return this.members.create(caller, tenant, body);
  }

  @Get()
  @ApiOperation({ summary: "List members and pending invitations" })
  @PaginationQueryDocs()
  @PageResponse("Member")
  @ProblemResponses(400, 404)
  list(
    @CallerParam() caller: Caller,
    @Param("tenant") tenant: string,
    @Query(new ZodQuery(PaginationQuerySchema)) query: PaginationQuery,
  ) {
    return this.members.list(caller, tenant, query);
  }

  @Patch(":id")
  @ApiOperation({ summary: "Change a member's role (takes effect on their next request)" })
  @PathParam("id", "The member's id")
  @JsonBody("MemberUpdate")
  @JsonResponse(200, "Member")
  @ProblemResponses(400, 403, 404, 409)
  update(
    @CallerParam() caller: Caller,
    @Param("tenant") tenant: string,
    @Param("id") id: string,
    @Body(new ZodBody(MemberUpdateSchema)) body: MemberUpdate,
  ) {
    return this.members.update(caller, tenant, id, body);
  }

  @Delete(":id")
  @HttpCode(204)
  @ApiOperation({ summary: "Remove a member; every console session of theirs ends at once" })
  @PathParam("id", "The member's id")
  @ProblemResponses(403, 404, 409)
  async remove(@CallerParam() caller: Caller, @Param("tenant") tenant: string, @Param("id") id: string) {
    await this.members.remove(caller, tenant, id);
  }
}
