import { z } from "zod";

/** Tenant-wide settings kept in `Tenant.settings` (JSON). Every field has a safe default. */
export const TenantSettingsSchema = z
  .object({
    /** Let callers without credentials in as the principal `anonymous` (policies can name it). */
    anonymousAccess: z.boolean().default(false),
    /** Extra browser origins allowed to call the gateway, besides the gateway's own. */
    allowedOrigins: z.array(z.string().url()).default([]),
    /** Days audit events are kept. */
    auditRetentionDays: z.number().int().min(1).max(3650).default(30),
    /** Store tool-call arguments in the audit log (off: only size and hash). */
    captureArguments: z.boolean().default(false),
    /** Tenant-wide rate limit. */
    rateLimit: z
      .object({ perMinute: z.number().int().min(1).max(1_000_000) })
      .strict()
      .nullable()
      .default(null),
  })
  .strict();
export type TenantSettings = z.infer<typeof TenantSettingsSchema>;
