import { type PolicySimulate, PolicySimulateSchema } from "@gatehouse/shared";
import {
  Body,
  Controller,
  Get,
  HttpCode,
  Inject,
  Param,
  type PipeTransform,
  Post,
  Put,
} from "@nestjs/common";
import { ApiOperation, ApiResponse, ApiTags } from "@nestjs/swagger";
import { z } from "zod";
import { type Caller, CallerParam } from "../common/caller.js";
import { Authenticated, JsonBody, JsonResponse, ProblemResponses, TenantParam } from "../common/openapi.js";
import { validate, ZodBody } from "../common/validation.js";
import { type PolicyPut, PolicyService } from "./policy.service.js";

// The document inside is checked by compilePolicy, which names the bad rule or CEL condition.
const EnvelopeSchema = z.strictObject({ document: z.unknown(), version: z.number().int().min(0).optional() });

/**
 * The PUT body is the policy document itself, or `{document, version}` as GET returns it (then
 * `version` guards against overwriting someone else's change). The document is checked by `compilePolicy`.
 */
class PolicyPutBody implements PipeTransform<unknown, PolicyPut> {
  transform(value: unknown): PolicyPut {
    if (value && typeof value === "object" && !Array.isArray(value) && "document" in value) {
      const envelope = validate(EnvelopeSchema, value);
      return { document: envelope.document, pathPrefix: "document", expectedVersion: envelope.version };
    }
    return { document: value ?? {}, pathPrefix: "" };
  }
}

@ApiTags("policy")
@Authenticated()
@TenantParam()
@Controller("v1/tenants/:tenant/policy")
export class PolicyController {
  constructor(@Inject(PolicyService) private readonly policy: PolicyService) {}

  @Get()
  @ApiOperation({
    summary: "The current policy and its version (version 0: none saved, the default applies)",
  })
  @JsonResponse(200, "Policy")
  @ProblemResponses(404)
  get(@CallerParam() caller: Caller, @Param("tenant") tenant: string) {
    return this.policy.get(caller, tenant);
  }

  @Put()
  @ApiOperation({
    summary: "Replace the policy",
    description:
      "Every rule and CEL `when` is compiled; 400 names the bad one. Send the document, or `{document, version}` to be refused with 409 if someone saved a newer version meanwhile. The answer adds `warnings` (`[{ruleId, path, message}]`) for rules that are saved but match nothing today: an upstream that does not exist, a tool pattern that matches none of the upstream's current (unprefixed) tools.",
  })
  @JsonBody("PolicyDocument", "PolicyPutEnvelope")
  @JsonResponse(200, "PolicySaved")
  @ProblemResponses(400, 403, 404, 409)
  put(
    @CallerParam() caller: Caller,
    @Param("tenant") tenant: string,
    @Body(new PolicyPutBody()) body: PolicyPut,
  ) {
    return this.policy.put(caller, tenant, body);
  }

  @Post("simulate")
  @HttpCode(200)
  @ApiOperation({ summary: "What the current policy decides for one call, and why" })
  @JsonBody("PolicySimulate")
  @ApiResponse({
    status: 200,
    description: "The decision, the deciding rule (null: defaultEffect) and a trace of every rule",
    schema: { $ref: "#/components/schemas/PolicyDecision" },
  })
  @ProblemResponses(400, 404)
  simulate(
    @CallerParam() caller: Caller,
    @Param("tenant") tenant: string,
    @Body(new ZodBody(PolicySimulateSchema)) body: PolicySimulate,
  ) {
    return this.policy.simulate(caller, tenant, body);
  }
}
