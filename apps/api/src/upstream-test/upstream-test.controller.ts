import { type UpstreamCreate, UpstreamCreateSchema } from "@gatehouse/shared";
import { Body, Controller, HttpCode, Inject, Param, Post } from "@nestjs/common";
import { ApiOperation, ApiTags } from "@nestjs/swagger";
import { type Caller, CallerParam } from "../common/caller.js";
import { Authenticated, JsonBody, JsonResponse, ProblemResponses, TenantParam } from "../common/openapi.js";
import { ZodBody } from "../common/validation.js";
import { UpstreamTestService } from "./upstream-test.service.js";

@ApiTags("upstreams")
@Authenticated()
@TenantParam()
@Controller("v1/tenants/:tenant/upstream-test")
export class UpstreamTestController {
  constructor(@Inject(UpstreamTestService) private readonly tester: UpstreamTestService) {}

  @Post()
  @HttpCode(200)
  @ApiOperation({
    summary: "Test an upstream before saving it",
    description:
      "Connects with the given transport, headers and static auth, lists the tools once and stores nothing. `ok: false` with the error when it cannot connect.",
  })
  @JsonBody("UpstreamCreate")
  @JsonResponse(200, "UpstreamTestResult")
  @ProblemResponses(400, 403, 404, 422)
  test(
    @CallerParam() caller: Caller,
    @Param("tenant") tenant: string,
    @Body(new ZodBody(UpstreamCreateSchema)) body: UpstreamCreate,
  ) {
    return this.tester.test(caller, tenant, body);
  }
}
