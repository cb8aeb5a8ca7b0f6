import { z } from "zod";
import { DisplayNameSchema, TimestampSchema } from "./common.schema.js";

/** Agent and role names as policies name them (`agent:<name>`, `role:<name>`). */
export const PrincipalNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,99}$/, "Must be 1-100 letters, digits, '_', '.', ':', '@' or '-'");

export const RateLimitSchema = z.strictObject({ perMinute: z.number().int().min(1).max(1_000_000) });

/** `POST /v1/tenants/{tenant}/api-keys`. */
export const ApiKeyCreateSchema = z.strictObject({
  name: DisplayNameSchema,
  /** The agent this key stands for (`agent:<name>` in policies). */
  agent: PrincipalNameSchema.optional(),
  roles: z.array(PrincipalNameSchema).max(50).optional(),
  /** After this instant the key is refused. Must be in the future. */
  expiresAt: TimestampSchema.optional(),
  rateLimit: RateLimitSchema.optional(),
});
export type ApiKeyCreate = z.infer<typeof ApiKeyCreateSchema>;

/** An API key as listed: never the key nor its hash. */
export const ApiKeyViewSchema = z.object({
  id: z.string(),
  name: z.string(),
  /** The first characters of the key, to recognise it. */
  prefix: z.string(),
  agent: z.string().nullable(),
  roles: z.array(z.string()),
  expiresAt: z.string().nullable(),
  rateLimit: RateLimitSchema.nullable(),
  lastUsedAt: z.string().nullable(),
  createdAt: z.string(),
});
export type ApiKeyView = z.infer<typeof ApiKeyViewSchema>;

/** The answer to a create: the only time `key` (`mgw_…`) is shown. */
export const ApiKeyCreatedSchema = ApiKeyViewSchema.extend({ key: z.string() });
export type ApiKeyCreated = z.infer<typeof ApiKeyCreatedSchema>;
