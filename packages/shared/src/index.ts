// Browser-safe root entry: named exports only. Node-only code lives in `@gatehouse/shared/node`.
export * from "./bus.js";
export * from "./config-snapshot.js";
export * from "./errors.js";
export { compileGlob, type Glob, isGlob } from "./policy/glob.js";
export {
  type CompiledPolicy,
  compilePolicy,
  POLICY_CEL_VARIABLES,
  POLICY_MATCHES_MAX_ARG_LENGTH,
  type PolicyDecision,
  type PolicyExplanation,
  type PolicyInput,
  type PolicyTraceEntry,
} from "./policy/policy.engine.js";
export {
  DEFAULT_POLICY,
  POLICY_LIMITS,
  POLICY_RULE_ID_PATTERN,
  type PolicyDocument,
  PolicyDocumentSchema,
  type PolicyRule,
  PolicyRuleSchema,
  PRINCIPAL_PATTERN,
} from "./policy/policy.schema.js";
export * from "./principal.js";
export * from "./schemas/index.js";
export * from "./tenant-settings.js";
export * from "./tool-names.js";
