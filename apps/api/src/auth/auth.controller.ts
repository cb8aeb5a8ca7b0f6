import {
  AppError,
  type BootstrapSignIn,
  BootstrapSignInSchema,
  ErrorCode,
  OIDC_STATE_COOKIE,
  type OidcCallback,
  OidcCallbackSchema,
  type OidcStart,
  OidcStartSchema,
} from "@gatehouse/shared";
import { Body, Controller, Get, HttpCode, Inject, Post, Req, Res } from "@nestjs/common";
import { ApiOperation, ApiTags } from "@nestjs/swagger";
import type { FastifyReply } from "fastify";
import { type ApiRequest, type Caller, CallerParam, Public } from "../common/caller.js";
import { Authenticated, JsonBody, JsonResponse, ProblemResponses } from "../common/openapi.js";
import { ZodBody } from "../common/validation.js";
import { AuthService } from "./auth.service.js";
import { readCookie, SessionsService } from "./sessions.service.js";

/**
 * Console sign-in and sessions. The console (apps/web) calls these from its server and relays the
 * `Set-Cookie` headers to the browser; the session token never appears in a response body.
 */
@ApiTags("auth")
@Controller("v1/auth")
export class AuthController {
  constructor(
    @Inject(AuthService) private readonly auth: AuthService,
    @Inject(SessionsService) private readonly sessions: SessionsService,
  ) {}

  @Public()
  @Get("providers")
  @ApiOperation({ summary: "Which console sign-in methods are on" })
  @JsonResponse(200, "AuthProviders")
  providers() {
    return this.auth.providers();
  }

  @Public()
  @Post("bootstrap")
  @HttpCode(200)
  @ApiOperation({
    summary: "Sign in to the console with the admin token (first run)",
    description:
      "On in `npm start` (embedded) unless CONSOLE_BOOTSTRAP_SIGNIN=false. Starts a platform-admin console session: the cookie comes in Set-Cookie.",
  })
  @JsonBody("BootstrapSignIn")
  @JsonResponse(200, "SignedIn")
  @ProblemResponses(400, 401, 403)
  async bootstrap(
    @Req() request: ApiRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
    @Body(new ZodBody(BootstrapSignInSchema)) body: BootstrapSignIn,
  ) {
    const result = await this.auth.bootstrap(body.token, request.headers["user-agent"]);
    reply.header("set-cookie", result.cookies);
    return result.body;
  }

  @Public()
  @Post("oidc/start")
  @HttpCode(200)
  @ApiOperation({
    summary: "Start an OpenID Connect sign-in",
    description:
      "Returns the identity provider's authorization URL (code + PKCE, state, nonce) and sets a short-lived sealed cookie the callback needs.",
  })
  @JsonBody("OidcStart")
  @JsonResponse(200, "OidcStarted")
  @ProblemResponses(400, 404, 503)
  async oidcStart(
    @Res({ passthrough: true }) reply: FastifyReply,
    @Body(new ZodBody(OidcStartSchema)) body: OidcStart,
  ) {
    const { authorizationUrl, cookie } = await this.auth.oidcStart(body.returnTo);
    reply.header("set-cookie", [cookie]);
    return { authorizationUrl };
  }

  @Public()
  @Post("oidc/callback")
  @HttpCode(200)
  @ApiOperation({
    summary: "Finish an OpenID Connect sign-in",
    description:
      "`query` is the query string the identity provider sent to the console's `/auth/callback`. Needs the cookie set by `oidc/start`; starts a session (Set-Cookie).",
  })
  @JsonBody("OidcCallback")
  @JsonResponse(200, "SignedIn")
  @ProblemResponses(400, 401, 404, 503)
  async oidcCallback(
    @Req() request: ApiRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
    @Body(new ZodBody(OidcCallbackSchema)) body: OidcCallback,
  ) {
    const result = await this.auth.oidcCallback(
      body.query,
      readCookie(request.headers.cookie, OIDC_STATE_COOKIE),
      request.headers["user-agent"],
    );
    reply.header("set-cookie", result.cookies);
    return result.body;
  }

  @Get("me")
  @Authenticated()
  @ApiOperation({
    summary: "Who is calling",
    description: "For a console session also its expiry and CSRF token (send it as X-CSRF-Token on writes).",
  })
  @JsonResponse(200, "AuthMe")
  me(@CallerParam() caller: Caller, @Req() request: ApiRequest) {
    return this.auth.me(caller, request.consoleSession ?? null);
  }

  @Post("sign-out")
  @HttpCode(204)
  @Authenticated()
  @ApiOperation({ summary: "End this console session" })
  @ProblemResponses(400, 403)
  async signOut(@CallerParam() caller: Caller, @Res({ passthrough: true }) reply: FastifyReply) {
    if (caller.kind !== "user") throw notSession();
    await this.sessions.end(caller.sessionId);
    reply.header("set-cookie", [this.sessions.clearCookie()]);
  }

  @Post("sign-out-everywhere")
  @HttpCode(204)
  @Authenticated()
  @ApiOperation({ summary: "End every console session of the signed-in person, on every device" })
  @ProblemResponses(400, 403)
  async signOutEverywhere(@CallerParam() caller: Caller, @Res({ passthrough: true }) reply: FastifyReply) {
    if (caller.kind !== "user") throw notSession();
    await this.sessions.endAll(caller.userId);
    reply.header("set-cookie", [this.sessions.clearCookie()]);
  }
}

function notSession(): AppError {
  return new AppError(
    ErrorCode.INVALID_REQUEST,
    "Only a console session can sign out; tokens are revoked instead",
  );
}
