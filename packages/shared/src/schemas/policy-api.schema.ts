import { z } from "zod";
import { PolicyDocumentSchema } from "../policy/policy.schema.js";

/**
 * `PUT /v1/tenants/{tenant}/policy` also accepts `{document, version}` (the shape GET returns):
 * with `version`, the write is refused with 409 unless it is still the current version.
 */
export const PolicyPutEnvelopeSchema = z.strictObject({
  document: PolicyDocumentSchema,
  version: z.number().int().min(0).optional(),
});
export type PolicyPutEnvelope = z.infer<typeof PolicyPutEnvelopeSchema>;

/** The tenant's current policy. `version` 0 means none was saved yet (the default applies). */
export const PolicyViewSchema = z.object({
  version: z.number().int(),
  document: PolicyDocumentSchema,
  createdAt: z.string().nullable(),
  createdBy: z.string().nullable(),
});
export type PolicyView = z.infer<typeof PolicyViewSchema>;

/** A rule that is valid but will not do what it says (no such upstream, a tool pattern matching nothing). */
export const PolicyWarningSchema = z.object({
  ruleId: z.string(),
  /** Where in the document, as in a 400's `details` (`rules.0.tools.1`). */
  path: z.string(),
  message: z.string(),
});
export type PolicyWarning = z.infer<typeof PolicyWarningSchema>;

/** `PUT …/policy`: the stored policy, and warnings about rules that match nothing today. */
export const PolicySavedSchema = PolicyViewSchema.extend({ warnings: z.array(PolicyWarningSchema) });
export type PolicySaved = z.infer<typeof PolicySavedSchema>;

/** `POST /v1/tenants/{tenant}/policy/simulate`. */
export const PolicySimulateSchema = z.strictObject({
  principal: z.strictObject({
    agent: z.string().min(1).max(100).optional(),
    roles: z.array(z.string().min(1).max(100)).max(50).optional(),
    claims: z.record(z.string(), z.unknown()).optional(),
    /** Simulate an API key (`key:<id>` principals). */
    keyId: z.string().min(1).max(100).optional(),
    /** Simulate a JWT subject (`sub:<subject>` principals). */
    subject: z.string().min(1).max(500).optional(),
  }),
  upstream: z.string().min(1).max(100),
  tool: z.string().min(1).max(200),
  arguments: z.record(z.string(), z.unknown()).optional(),
});
export type PolicySimulate = z.infer<typeof PolicySimulateSchema>;

export const PolicyDecisionViewSchema = z.object({
  decision: z.enum(["allow", "deny"]),
  ruleId: z.string().nullable(),
  reason: z.string(),
});
export type PolicyDecisionView = z.infer<typeof PolicyDecisionViewSchema>;
