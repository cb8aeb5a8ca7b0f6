import { z } from "zod";
import { DisplayNameSchema, TimestampSchema } from "./common.schema.js";

/** What a tenant-scoped admin token may do: `viewer` reads; `admin` and `owner` also write; only `owner` deletes the tenant. */
export const AdminTokenRoleSchema = z.enum(["owner", "admin", "viewer"]);
export type AdminTokenRole = z.infer<typeof AdminTokenRoleSchema>;

/** `POST /v1/tenants/{tenant}/tokens`. */
export const AdminTokenCreateSchema = z.strictObject({
  name: DisplayNameSchema,
  /** Defaults to `admin`. A tenant token cannot mint a token above its own role. */
  role: AdminTokenRoleSchema.optional(),
  expiresAt: TimestampSchema.optional(),
});
export type AdminTokenCreate = z.infer<typeof AdminTokenCreateSchema>;

export const AdminTokenViewSchema = z.object({
  id: z.string(),
  name: z.string(),
  role: AdminTokenRoleSchema,
  prefix: z.string(),
  expiresAt: z.string().nullable(),
  lastUsedAt: z.string().nullable(),
  createdAt: z.string(),
});
export type AdminTokenView = z.infer<typeof AdminTokenViewSchema>;

/** The answer to a create: the only time `token` (`mgt_…`) is shown. */
export const AdminTokenCreatedSchema = AdminTokenViewSchema.extend({ token: z.string() });
export type AdminTokenCreated = z.infer<typeof AdminTokenCreatedSchema>;
