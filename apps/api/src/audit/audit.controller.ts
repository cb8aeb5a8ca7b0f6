import { type AuditQuery, AuditQuerySchema } from "@gatehouse/shared";
import { applyDecorators, Controller, Get, Inject, Param, Query } from "@nestjs/common";
import { ApiOperation, ApiQuery, ApiResponse, ApiTags } from "@nestjs/swagger";
import { type Caller, CallerParam } from "../common/caller.js";
import { Authenticated, ProblemResponses, TenantParam } from "../common/openapi.js";
import { ZodQuery } from "../common/validation.js";
import { AuditEventPageOpenApi } from "./audit.openapi.js";
import { AuditService } from "./audit.service.js";

const text = (name: string, description: string) =>
  ApiQuery({ name, required: false, description, schema: { type: "string" } });
const instant = (name: string, description: string) =>
  ApiQuery({
    name,
    required: false,
    description: `${description}: ISO 8601 date-time with offset (\`2030-01-01T00:00:00Z\`) or a date (UTC midnight)`,
    schema: { type: "string", format: "date-time" },
  });

const AuditQueryDocs = () =>
  applyDecorators(
    ApiQuery({
      name: "limit",
      required: false,
      schema: { type: "integer", minimum: 1, maximum: 200, default: 50 },
    }),
    ApiQuery({
      name: "cursor",
      required: false,
      description: "`nextCursor` of the previous page (opaque)",
      schema: { type: "string" },
    }),
    ApiQuery({ name: "kind", required: false, schema: { type: "string", enum: ["tool_call", "admin"] } }),
    text(
      "actor",
      "Who: `key:<id>`, `sub:<subject>`, `anonymous` for tool calls; `platform-admin`, `token:<id>` for admin changes",
    ),
    text("agent", "The agent name of the API key or token"),
    text("upstream", "Upstream name (tool calls, and admin changes of that upstream)"),
    text("tool", "Tool name as the upstream knows it (unprefixed)"),
    ApiQuery({ name: "decision", required: false, schema: { type: "string", enum: ["allow", "deny"] } }),
    text("outcome", "`ok`, `tool_error`, or the error code the caller got (e.g. `DENIED_BY_POLICY`)"),
    text("action", "Admin changes: e.g. `upstream.update`, `api-key.create`, `policy.update`"),
    instant("since", "Events at or after this instant"),
    instant("until", "Events before this instant"),
  );

@ApiTags("audit")
@Authenticated()
@TenantParam()
@Controller("v1/tenants/:tenant/audit")
export class AuditController {
  constructor(@Inject(AuditService) private readonly audit: AuditService) {}

  @Get()
  @ApiOperation({
    summary: "The tenant's audit log: tool calls and admin changes, newest first",
    description:
      "Every filter is an exact match; they combine with AND. Tool calls are written by gateway nodes in batches, so the newest may appear a second or two after the call. Events older than the tenant's `settings.auditRetentionDays` (default 30) are deleted daily.",
  })
  @AuditQueryDocs()
  @ApiResponse({ status: 200, description: "One page, newest first", schema: AuditEventPageOpenApi })
  @ProblemResponses(400, 404)
  list(
    @CallerParam() caller: Caller,
    @Param("tenant") tenant: string,
    @Query(new ZodQuery(AuditQuerySchema)) query: AuditQuery,
  ) {
    return this.audit.list(caller, tenant, query);
  }
}
