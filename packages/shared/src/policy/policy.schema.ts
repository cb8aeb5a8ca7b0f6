import { z } from "zod";

/** Rule ids: short, URL- and log-safe, unique within a document. */
export const POLICY_RULE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** `*`, `anonymous`, or `agent:` / `role:` / `key:` / `sub:` followed by a glob. */
export const PRINCIPAL_PATTERN = /^(\*|anonymous|(agent|role|key|sub):.+)$/s;

/** Upper bounds that keep a document cheap to compile and evaluate on every call. */
export const POLICY_LIMITS = {
  rules: 1000,
  patternsPerList: 200,
  patternLength: 256,
  whenLength: 4096,
  descriptionLength: 1000,
} as const;

const GlobSchema = z
  .string()
  .min(1, "must not be empty")
  .max(POLICY_LIMITS.patternLength, `must be at most ${POLICY_LIMITS.patternLength} characters`);

const GlobListSchema = z
  .array(GlobSchema)
  .min(1, "must not be empty; omit the field to match everything")
  .max(POLICY_LIMITS.patternsPerList, `must have at most ${POLICY_LIMITS.patternsPerList} patterns`);

const PrincipalListSchema = z
  .array(
    GlobSchema.regex(
      PRINCIPAL_PATTERN,
      'must be "*", "anonymous", or one of "agent:<glob>", "role:<glob>", "key:<glob>", "sub:<glob>"',
    ),
  )
  .min(1, "must not be empty; omit the field to match everything")
  .max(POLICY_LIMITS.patternsPerList, `must have at most ${POLICY_LIMITS.patternsPerList} patterns`);

/** One rule of a tenant policy (api.md "Policy document"). Unknown fields are rejected. */
export const PolicyRuleSchema = z
  .object({
    id: z
      .string()
      .regex(
        POLICY_RULE_ID_PATTERN,
        "must start with a letter or digit and contain only letters, digits, '_', '.', '-' (at most 64)",
      ),
    effect: z.enum(["allow", "deny"]),
    description: z.string().max(POLICY_LIMITS.descriptionLength).optional(),
    /** Who the rule is about; omitted = everyone. */
    principals: PrincipalListSchema.optional(),
    /** Upstream names (globs); omitted = every upstream. */
    upstreams: GlobListSchema.optional(),
    /** Unprefixed tool names (globs); omitted = every tool. */
    tools: GlobListSchema.optional(),
    /** CEL over `claims`, `agent`, `roles`, `upstream`, `tool`, `args`; compiled when the policy is saved. */
    when: z
      .string()
      .trim()
      .min(1, "must not be empty; omit the field for an unconditional rule")
      .max(POLICY_LIMITS.whenLength)
      .optional(),
    /** Rate limit for the calls this rule allows (per principal and rule). */
    rateLimit: z
      .object({ perMinute: z.number().int().min(1).max(1_000_000) })
      .strict()
      .optional(),
  })
  .strict();
export type PolicyRule = z.infer<typeof PolicyRuleSchema>;

/** A tenant's policy: a matching deny wins, else a matching allow, else `defaultEffect`. */
export const PolicyDocumentSchema = z
  .object({
    defaultEffect: z.enum(["allow", "deny"]).default("deny"),
    rules: z
      .array(PolicyRuleSchema)
      .max(POLICY_LIMITS.rules, `must have at most ${POLICY_LIMITS.rules} rules`)
      .default([]),
  })
  .strict()
  .superRefine((doc, ctx) => {
    const seen = new Map<string, number>();
    doc.rules.forEach((rule, index) => {
      const first = seen.get(rule.id);
      if (first === undefined) seen.set(rule.id, index);
      else
        ctx.addIssue({
          code: "custom",
          path: ["rules", index, "id"],
          message: `duplicate rule id "${rule.id}" (already used by rules[${first}])`,
        });
    });
  });
export type PolicyDocument = z.infer<typeof PolicyDocumentSchema>;

/** What a tenant starts with: nothing is allowed until a rule says so. */
export const DEFAULT_POLICY: PolicyDocument = { defaultEffect: "deny", rules: [] };
