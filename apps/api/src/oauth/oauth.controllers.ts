import {
  AppError,
  type ConnectRequest,
  ConnectRequestSchema,
  ConnectResponseSchema,
  CredentialRefreshRequestSchema,
  UpstreamCredentialViewSchema,
} from "@gatehouse/shared";
import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Inject,
  Param,
  Post,
  Query,
  Req,
  Res,
} from "@nestjs/common";
import { ApiBody, ApiOperation, ApiQuery, ApiResponse, ApiTags } from "@nestjs/swagger";
import type { FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { type Caller, CallerParam, Public } from "../common/caller.js";
import { Authenticated, PathParam, ProblemResponses, TenantParam } from "../common/openapi.js";
import { ZodBody } from "../common/validation.js";
import { ConnectService } from "./connect.service.js";
import { McpOAuthService } from "./mcp-oauth.service.js";
import { UpstreamOAuthService } from "./upstream-oauth.service.js";

const NameParam = () => PathParam("name", "The upstream's name");
const doc = (schema: z.ZodType, io: "input" | "output" = "output") =>
  z.toJSONSchema(schema, { target: "openapi-3.0", io, unrepresentable: "any" }) as Record<string, unknown>;

@ApiTags("upstream oauth")
@Authenticated()
@TenantParam()
@NameParam()
@Controller("v1/tenants/:tenant/upstreams/:name")
export class UpstreamOAuthController {
  constructor(@Inject(UpstreamOAuthService) private readonly oauth: UpstreamOAuthService) {}

  @Post("connect")
  @ApiOperation({
    summary: "Start connecting an account (authorization code with PKCE)",
    description:
      "For `oauth-authorization-code` and `mcp-oauth` upstreams. Returns the authorization URL to open in a browser; the callback `/v1/oauth/callback` stores the tokens sealed. Per-user upstreams take the principal (`key:<id>`, `sub:<subject>`) as `subject`.",
  })
  @ApiBody({ required: false, schema: doc(ConnectRequestSchema, "input") })
  @ApiResponse({ status: 201, schema: doc(ConnectResponseSchema) })
  @ProblemResponses(400, 403, 404, 422)
  connect(
    @CallerParam() caller: Caller,
    @Param("tenant") tenant: string,
    @Param("name") name: string,
    @Body(new ZodBody(ConnectRequestSchema.optional().transform((b) => b ?? {}))) body: ConnectRequest,
  ) {
    return this.oauth.startConnect(caller, tenant, name, body);
  }

  @Get("credentials")
  @ApiOperation({
    summary:
      "The upstream's OAuth credentials: status, expiry, last refresh and its error, scheduled and recent jobs",
  })
  @ApiResponse({
    status: 200,
    schema: {
      type: "object",
      properties: { items: { type: "array", items: doc(UpstreamCredentialViewSchema) } },
    },
  })
  @ProblemResponses(404)
  credentials(@CallerParam() caller: Caller, @Param("tenant") tenant: string, @Param("name") name: string) {
    return this.oauth.listCredentials(caller, tenant, name);
  }

  @Post("credentials/refresh")
  @HttpCode(202)
  @ApiOperation({ summary: "Refresh a credential now (or get the first client-credentials token)" })
  @ApiBody({ required: false, schema: doc(CredentialRefreshRequestSchema, "input") })
  @ApiResponse({
    status: 202,
    description: "`{credentialId, jobId}`: the queued job (see GET …/credentials)",
  })
  @ProblemResponses(400, 403, 404, 422)
  refresh(
    @CallerParam() caller: Caller,
    @Param("tenant") tenant: string,
    @Param("name") name: string,
    @Body(new ZodBody(CredentialRefreshRequestSchema.optional().transform((b) => b ?? {}))) body: {
      subject?: string;
    },
  ) {
    return this.oauth.refreshNow(caller, tenant, name, body.subject ?? "");
  }

  @Delete("credentials/:credentialId")
  @HttpCode(204)
  @ApiOperation({ summary: "Disconnect: delete a credential (gateways stop using it at once)" })
  @ProblemResponses(403, 404)
  async disconnect(
    @CallerParam() caller: Caller,
    @Param("tenant") tenant: string,
    @Param("name") name: string,
    @Param("credentialId") credentialId: string,
  ): Promise<void> {
    await this.oauth.disconnect(caller, tenant, name, credentialId);
  }

  @Get("jobs")
  @ApiOperation({ summary: "Tool discovery and health probe jobs of the upstream, with the last results" })
  @ProblemResponses(404)
  jobs(@CallerParam() caller: Caller, @Param("tenant") tenant: string, @Param("name") name: string) {
    return this.oauth.upstreamJobs(caller, tenant, name);
  }
}

/** Browser-facing OAuth routes: no API token (the state or a sealed ticket authorizes). */
@ApiTags("upstream oauth")
@Public()
@Controller("v1/oauth")
export class OAuthPublicController {
  constructor(
    @Inject(ConnectService) private readonly connect: ConnectService,
    @Inject(McpOAuthService) private readonly mcp: McpOAuthService,
  ) {}

  @Get("connect")
  @ApiOperation({
    summary: "Reconnect link from a gateway error: redirects to the authorization server",
    description:
      "The `ticket` is sealed by Gatehouse, bound to one upstream and principal, and valid for 15 minutes.",
  })
  @ApiQuery({ name: "ticket", required: true, schema: { type: "string" } })
  @ApiResponse({ status: 302, description: "To the authorization server" })
  async connectLink(@Query("ticket") ticket: string | undefined, @Res() reply: FastifyReply): Promise<void> {
    try {
      const { authorizationUrl } = await this.connect.startFromTicket(ticket ?? "");
      await reply.redirect(authorizationUrl, 302);
    } catch (error) {
      await page(reply, 400, "Cannot connect", message(error));
    }
  }

  @Get("callback")
  @ApiOperation({ summary: "OAuth redirect URI: redeems the code and stores the tokens sealed" })
  @ApiResponse({
    status: 200,
    description: "An HTML page saying the account is connected (or a redirect to returnTo)",
  })
  async callback(@Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const query = new URL(request.url, "http://callback.invalid").searchParams;
    try {
      const result = await this.connect.complete(query);
      if (result.returnTo) {
        const to = new URL(result.returnTo);
        to.searchParams.set("connected", result.upstream);
        await reply.redirect(to.toString(), 302);
        return;
      }
      await page(
        reply,
        200,
        "Connected",
        `Your account is connected to ${result.upstream}${result.subject ? ` for ${result.subject}` : ""}. You can close this window and retry the call.`,
      );
    } catch (error) {
      await page(reply, 400, "Connection failed", message(error));
    }
  }

  @Get("client-metadata.json")
  @ApiOperation({ summary: "Gatehouse's OAuth client ID metadata document (MCP authorization)" })
  clientMetadata() {
    return this.mcp.clientMetadataDocument();
  }
}

/** What a person sees: our own errors say what to do; anything else stays in the log. */
function message(error: unknown): string {
  return error instanceof AppError ? error.message : "Unexpected error; the API log has the details.";
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

async function page(reply: FastifyReply, status: number, title: string, text: string): Promise<void> {
  await reply
    .status(status)
    .header("content-type", "text/html; charset=utf-8")
    .header("cache-control", "no-store")
    .header("content-security-policy", "default-src 'none'")
    .send(
      `<!doctype html><html><head><meta charset="utf-8"><title>Gatehouse: ${escapeHtml(title)}</title></head>` +
        `<body><h1>${escapeHtml(title)}</h1><p>${escapeHtml(text)}</p></body></html>`,
    );
}
