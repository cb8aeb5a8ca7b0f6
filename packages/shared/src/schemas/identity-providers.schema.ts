import { z } from "zod";
import { DisplayNameSchema } from "./common.schema.js";

const HttpUrlSchema = z.url({ protocol: /^https?$/, error: "Must be an http(s) URL" });

/** A claim value that grants a role: `{claim: "groups", value: "eng", role: "research"}`. */
export const ClaimMappingSchema = z.strictObject({
  claim: z.string().min(1).max(200),
  value: z.string().min(1).max(500),
  role: z.string().min(1).max(100),
});
export type ClaimMapping = z.infer<typeof ClaimMappingSchema>;

const idpFields = {
  name: DisplayNameSchema,
  /** OIDC issuer; JWTs must carry it as `iss`. */
  issuer: HttpUrlSchema,
  /** Accepted `aud` values besides the tenant's gateway URL. */
  audiences: z.array(z.string().min(1).max(500)).max(20),
  /** Discovered from `${issuer}/.well-known/openid-configuration` when omitted. */
  jwksUri: HttpUrlSchema,
  /** Claim holding the caller's roles (default `roles`). */
  roleClaim: z.string().min(1).max(200),
  claimMappings: z.array(ClaimMappingSchema).max(100),
};

/** `POST /v1/tenants/{tenant}/identity-providers`. */
export const IdentityProviderCreateSchema = z.strictObject({
  name: idpFields.name,
  issuer: idpFields.issuer,
  audiences: idpFields.audiences.optional(),
  jwksUri: idpFields.jwksUri.optional(),
  roleClaim: idpFields.roleClaim.optional(),
  claimMappings: idpFields.claimMappings.optional(),
});
export type IdentityProviderCreate = z.infer<typeof IdentityProviderCreateSchema>;

/** `PATCH …/identity-providers/{id}`: `jwksUri: null` (or a new `issuer` without `jwksUri`) rediscovers it. */
export const IdentityProviderUpdateSchema = z.strictObject({
  name: idpFields.name.optional(),
  issuer: idpFields.issuer.optional(),
  audiences: idpFields.audiences.optional(),
  jwksUri: idpFields.jwksUri.nullable().optional(),
  roleClaim: idpFields.roleClaim.nullable().optional(),
  claimMappings: idpFields.claimMappings.optional(),
});
export type IdentityProviderUpdate = z.infer<typeof IdentityProviderUpdateSchema>;

export const IdentityProviderViewSchema = z.object({
  id: z.string(),
  name: z.string(),
  issuer: z.string(),
  audiences: z.array(z.string()),
  jwksUri: z.string().nullable(),
  roleClaim: z.string().nullable(),
  claimMappings: z.array(ClaimMappingSchema),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type IdentityProviderView = z.infer<typeof IdentityProviderViewSchema>;
