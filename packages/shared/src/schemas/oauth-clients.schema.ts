import { z } from "zod";
import { OAuthScopeSchema } from "./upstream-oauth.schema.js";

export const OAUTH_CLIENT_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** Token endpoint client authentication (RFC 8414 `token_endpoint_auth_methods_supported`). */
export const OAuthClientAuthMethodSchema = z.enum(["client_secret_basic", "client_secret_post", "none"]);
export type OAuthClientAuthMethod = z.infer<typeof OAuthClientAuthMethodSchema>;

const HttpUrlSchema = z.url({ protocol: /^https?$/, error: "Must be an http(s) URL" });

/** Parameters added to authorization (and token) requests, e.g. `audience`, `prompt`, `resource`. */
const ExtraParamsSchema = z
  .record(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "Not a valid parameter name"), z.string().max(2000))
  .refine((p) => Object.keys(p).length <= 20, "At most 20 parameters")
  .refine(
    (p) =>
      !Object.keys(p).some((k) =>
        [
          "client_id",
          "client_secret",
          "code_challenge",
          "code_challenge_method",
          "state",
          "redirect_uri",
          "response_type",
          "grant_type",
          "code",
          "refresh_token",
          "code_verifier",
        ].includes(k),
      ),
    "Protocol parameters (client_id, state, redirect_uri, code_challenge, …) are set by Gatehouse",
  );

const oauthClientFields = {
  name: z
    .string()
    .regex(
      OAUTH_CLIENT_NAME_PATTERN,
      "Must be 1-63 lowercase letters, digits, '_' or '-', starting with a letter or digit",
    ),
  /** Issuer for discovery (`/.well-known/openid-configuration` or RFC 8414). */
  issuer: HttpUrlSchema.nullable(),
  authorizationEndpoint: HttpUrlSchema.nullable(),
  tokenEndpoint: HttpUrlSchema.nullable(),
  clientId: z.string().min(1).max(500),
  /** Sealed at rest, never returned. */
  clientSecret: z.string().min(1).max(2000).nullable(),
  authMethod: OAuthClientAuthMethodSchema,
  scopes: z.array(OAuthScopeSchema).max(50),
  extraParams: ExtraParamsSchema,
};

interface EndpointFields {
  issuer?: string | null;
  tokenEndpoint?: string | null;
  authMethod?: string;
  clientSecret?: string | null;
}

/** Either an issuer or a token endpoint; a secret unless the method is `none`. */
export function oauthClientErrors(
  c: EndpointFields,
  secretStored = false,
): Array<{ path: string; message: string }> {
  const errors: Array<{ path: string; message: string }> = [];
  if (!c.issuer && !c.tokenEndpoint) {
    errors.push({
      path: "issuer",
      message: "Give an issuer (discovered) or explicit endpoints (tokenEndpoint at least)",
    });
  }
  if ((c.authMethod ?? "client_secret_basic") !== "none" && !c.clientSecret && !secretStored) {
    errors.push({
      path: "clientSecret",
      message: `Required for authMethod ${c.authMethod ?? "client_secret_basic"}`,
    });
  }
  return errors;
}

/** `POST /v1/tenants/{tenant}/oauth-clients`. */
export const OAuthClientCreateSchema = z
  .strictObject({
    name: oauthClientFields.name,
    issuer: oauthClientFields.issuer.optional(),
    authorizationEndpoint: oauthClientFields.authorizationEndpoint.optional(),
    tokenEndpoint: oauthClientFields.tokenEndpoint.optional(),
    clientId: oauthClientFields.clientId,
    clientSecret: oauthClientFields.clientSecret.optional(),
    authMethod: oauthClientFields.authMethod.optional(),
    scopes: oauthClientFields.scopes.optional(),
    extraParams: oauthClientFields.extraParams.optional(),
  })
  .superRefine((c, ctx) => {
    for (const e of oauthClientErrors(c))
      ctx.addIssue({ code: "custom", path: [e.path], message: e.message });
  });
export type OAuthClientCreate = z.infer<typeof OAuthClientCreateSchema>;

/** `PATCH /v1/tenants/{tenant}/oauth-clients/{id}`: only the fields sent change; `null` clears. */
export const OAuthClientUpdateSchema = z.strictObject({
  name: oauthClientFields.name.optional(),
  issuer: oauthClientFields.issuer.optional(),
  authorizationEndpoint: oauthClientFields.authorizationEndpoint.optional(),
  tokenEndpoint: oauthClientFields.tokenEndpoint.optional(),
  clientId: oauthClientFields.clientId.optional(),
  clientSecret: oauthClientFields.clientSecret.optional(),
  authMethod: oauthClientFields.authMethod.optional(),
  scopes: oauthClientFields.scopes.optional(),
  extraParams: oauthClientFields.extraParams.optional(),
});
export type OAuthClientUpdate = z.infer<typeof OAuthClientUpdateSchema>;

/** An OAuth client as the API shows it: the secret never appears, only whether one is stored. */
export const OAuthClientViewSchema = z.object({
  id: z.string(),
  name: z.string(),
  issuer: z.string().nullable(),
  authorizationEndpoint: z.string().nullable(),
  tokenEndpoint: z.string().nullable(),
  clientId: z.string(),
  hasClientSecret: z.boolean(),
  authMethod: z.string(),
  scopes: z.array(z.string()),
  extraParams: z.record(z.string(), z.string()),
  /** Upstreams that use this client. */
  upstreams: z.array(z.string()),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type OAuthClientView = z.infer<typeof OAuthClientViewSchema>;
