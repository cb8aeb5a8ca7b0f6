import { z } from "zod";
import { type TenantSettings, TenantSettingsSchema } from "../tenant-settings.js";
import { DisplayNameSchema, PaginationQuerySchema } from "./common.schema.js";

export const TENANT_SLUG_PATTERN = /^[a-z0-9][a-z0-9-]{1,62}$/;

const UUID_SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * True when `{tenant}` in a path has the shape of a tenant id (a UUID, any case). Such a reference
 * names a tenant by id only, never by slug; slugs of that shape are refused, so one tenant cannot
 * take a name that another tenant's id answers to.
 */
export function isTenantIdShaped(ref: string): boolean {
  return UUID_SHAPE.test(ref);
}

/** The one lookup a `{tenant}` reference means: by id when it has an id's shape, else by slug. */
export function tenantRefWhere(ref: string): { id: string } | { slug: string } {
  return isTenantIdShaped(ref) ? { id: ref.toLowerCase() } : { slug: ref };
}

export const TenantSlugSchema = z
  .string()
  .regex(TENANT_SLUG_PATTERN, "Must be 2-63 lowercase letters, digits or dashes, not starting with a dash")
  .refine((slug) => !isTenantIdShaped(slug), "Must not have the shape of a tenant id (a UUID)");

/**
 * Tenant settings as a PATCH sees them: every field optional and no defaults filled in, so only
 * the fields sent are changed.
 */
export const TenantSettingsPatchSchema = z.strictObject(
  Object.fromEntries(
    Object.entries(TenantSettingsSchema.shape).map(([key, field]) => [
      key,
      (field instanceof z.ZodDefault ? field.unwrap() : field).optional(),
    ]),
  ),
) as unknown as z.ZodType<Partial<TenantSettings>>;

/** `POST /v1/tenants`. */
export const TenantCreateSchema = z.strictObject({
  slug: TenantSlugSchema,
  name: DisplayNameSchema,
  settings: TenantSettingsPatchSchema.optional(),
});
export type TenantCreate = z.infer<typeof TenantCreateSchema>;

/** `PATCH /v1/tenants/{tenant}`: `settings` is merged into the stored settings. */
export const TenantUpdateSchema = z.strictObject({
  slug: TenantSlugSchema.optional(),
  name: DisplayNameSchema.optional(),
  settings: TenantSettingsPatchSchema.optional(),
});
export type TenantUpdate = z.infer<typeof TenantUpdateSchema>;

export const TenantViewSchema = z.object({
  id: z.string(),
  slug: z.string(),
  name: z.string(),
  /** Where agents connect: `${PUBLIC_GATEWAY_URL}/t/{slug}/mcp`. */
  gatewayUrl: z.string(),
  settings: TenantSettingsSchema,
  configVersion: z.number().int(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type TenantView = z.infer<typeof TenantViewSchema>;

/** `GET /v1/tenants`: a page, optionally only tenants whose slug or name contains `q`. */
export const TenantListQuerySchema = PaginationQuerySchema.extend({
  q: z.string().trim().max(100).optional(),
});
export type TenantListQuery = z.infer<typeof TenantListQuerySchema>;
