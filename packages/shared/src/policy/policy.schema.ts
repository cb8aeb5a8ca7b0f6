import { z } from "zod";

// Placeholder until the policy engine lands; replaced by the shared-package work.
export const PolicyDocumentSchema = z.object({
  defaultEffect: z.enum(["allow", "deny"]),
  rules: z.array(z.record(z.string(), z.unknown())),
});
export type PolicyDocument = z.infer<typeof PolicyDocumentSchema>;
