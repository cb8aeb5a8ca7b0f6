import { z } from "zod";
import { AdminTokenRoleSchema } from "./admin-tokens.schema.js";
import { DisplayNameSchema } from "./common.schema.js";

/** A member's role in a tenant: `viewer` reads; `admin` also writes; `owner` also deletes the tenant and grants owner. */
export const MemberRoleSchema = AdminTokenRoleSchema;
export type MemberRole = z.infer<typeof MemberRoleSchema>;

/** `POST /v1/tenants/{tenant}/members`: an invitation, bound on the person's first sign-in with this verified email. */
export const MemberCreateSchema = z.strictObject({
  email: z
    .email("Must be an email address")
    .max(254)
    .transform((e) => e.toLowerCase()),
  role: MemberRoleSchema.default("viewer"),
  name: DisplayNameSchema.optional(),
});
export type MemberCreate = z.infer<typeof MemberCreateSchema>;

/** `PATCH /v1/tenants/{tenant}/members/{id}`. */
export const MemberUpdateSchema = z.strictObject({
  role: MemberRoleSchema.optional(),
  name: DisplayNameSchema.optional(),
});
export type MemberUpdate = z.infer<typeof MemberUpdateSchema>;

export const MemberViewSchema = z.object({
  id: z.string(),
  email: z.string(),
  name: z.string().nullable(),
  role: MemberRoleSchema,
  /** `invited` until the person first signs in with the invited email. */
  status: z.enum(["invited", "active"]),
  userId: z.string().nullable(),
  joinedAt: z.string().nullable(),
  createdAt: z.string(),
});
export type MemberView = z.infer<typeof MemberViewSchema>;

/** `POST /v1/auth/bootstrap`: the embedded first-run sign-in with the ADMIN_TOKEN `npm start` printed. */
export const BootstrapSignInSchema = z.strictObject({ token: z.string().min(1, "Required") });
export type BootstrapSignIn = z.infer<typeof BootstrapSignInSchema>;

/** `POST /v1/auth/oidc/start`. */
export const OidcStartSchema = z.strictObject({
  /** A path of the console to land on after sign-in (never another origin). */
  returnTo: z
    .string()
    .regex(/^\/(?!\/)[^\s\\]*$/, "Must be a path on the console, starting with one /")
    .max(500)
    .optional(),
});
export type OidcStart = z.infer<typeof OidcStartSchema>;

export const OidcStartedSchema = z.object({ authorizationUrl: z.string() });
export type OidcStarted = z.infer<typeof OidcStartedSchema>;

/** `POST /v1/auth/oidc/callback`: the query string the IdP sent to the console's callback page. */
export const OidcCallbackSchema = z.strictObject({ query: z.string().max(8192) });
export type OidcCallback = z.infer<typeof OidcCallbackSchema>;

/** `GET /v1/auth/providers`: which sign-in buttons the console shows. */
export const AuthProvidersSchema = z.object({
  bootstrap: z.boolean(),
  oidc: z.object({ enabled: z.boolean(), issuer: z.string().nullable() }),
});
export type AuthProviders = z.infer<typeof AuthProvidersSchema>;

export const MembershipViewSchema = z.object({
  tenant: z.object({ id: z.string(), slug: z.string(), name: z.string() }),
  role: MemberRoleSchema,
});
export type MembershipView = z.infer<typeof MembershipViewSchema>;

/** `GET /v1/auth/me`: who the caller is, the tenants it may see and, for a console session, its CSRF token. */
export const AuthMeSchema = z.object({
  kind: z.enum(["platform-token", "tenant-token", "session"]),
  user: z.object({ id: z.string(), email: z.string().nullable(), name: z.string().nullable() }).nullable(),
  platformAdmin: z.boolean(),
  /** Tenants the caller belongs to (all tenants are open to a platform admin; they are not listed). */
  memberships: z.array(MembershipViewSchema),
  session: z
    .object({
      expiresAt: z.string(),
      idleExpiresAt: z.string(),
      /** Send as `X-CSRF-Token` on every state-changing request made with the session cookie. */
      csrfToken: z.string(),
    })
    .nullable(),
});
export type AuthMe = z.infer<typeof AuthMeSchema>;

/** The answer to a sign-in: the session cookie is in `Set-Cookie`; this body never holds it. */
export const SignedInSchema = z.object({
  user: z.object({ id: z.string(), email: z.string().nullable(), name: z.string().nullable() }),
  platformAdmin: z.boolean(),
  csrfToken: z.string(),
  expiresAt: z.string(),
  returnTo: z.string().nullable(),
});
export type SignedIn = z.infer<typeof SignedInSchema>;

/** Name of the console session cookie (HttpOnly, SameSite=Lax, Secure over https). */
export const SESSION_COOKIE = "gatehouse_session";
/** Name of the short-lived cookie carrying the sealed OIDC state, nonce and PKCE verifier. */
export const OIDC_STATE_COOKIE = "gatehouse_oidc";
/** Header carrying the session's CSRF token on state-changing requests. */
export const CSRF_HEADER = "x-csrf-token";

/** `POST /v1/tenants/{tenant}/upstream-test`: what connecting to an unsaved upstream found. */
export const UpstreamTestResultSchema = z.object({
  ok: z.boolean(),
  latencyMs: z.number().int(),
  /** Why it could not connect or list tools. */
  error: z.string().nullable(),
  tools: z.array(z.object({ name: z.string(), description: z.string().nullable() })),
});
export type UpstreamTestResult = z.infer<typeof UpstreamTestResultSchema>;
