import { z } from "zod";

/** `tool_call`: written by gateway nodes, one per call. `admin`: written by the API, one per change. */
export const AuditKindSchema = z.enum(["tool_call", "admin"]);
export type AuditKind = z.infer<typeof AuditKindSchema>;

/** `GET /v1/tenants/{tenant}/audit` cursors: `<epoch ms>.<event id>` of the last item of a page. */
export const AUDIT_CURSOR_PATTERN =
  /^\d{1,15}\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

// Query strings send empty values for blank form fields: treat them as not sent.
const blank = (v: unknown) => (v === "" ? undefined : v);
const text = z.preprocess(blank, z.string().max(200).optional());

/** An instant: ISO 8601 date-time with offset (`2030-01-01T00:00:00Z`) or a date (`2030-01-01`, UTC midnight). */
const Instant = z.preprocess(
  blank,
  z
    .union([z.iso.datetime({ offset: true }), z.iso.date()], {
      error: "Must be an ISO 8601 date-time with offset (2030-01-01T00:00:00Z) or a date (2030-01-01)",
    })
    .transform((s) => new Date(s))
    .optional(),
);

/** Filters and page of `GET /v1/tenants/{tenant}/audit`; every filter is an exact match. */
export const AuditQuerySchema = z
  .strictObject({
    limit: z.preprocess(blank, z.coerce.number().int().min(1).max(200).default(50)),
    cursor: z.preprocess(
      blank,
      z.string().regex(AUDIT_CURSOR_PATTERN, "Must be the nextCursor of a previous page").optional(),
    ),
    kind: z.preprocess(blank, AuditKindSchema.optional()),
    /** The caller: `key:<id>`, `sub:<subject>`, `anonymous` (tool calls); `platform-admin`, `token:<id>` (admin). */
    actor: text,
    agent: text,
    upstream: text,
    tool: text,
    decision: z.preprocess(blank, z.enum(["allow", "deny"]).optional()),
    /** `ok`, `tool_error`, or an error code such as `DENIED_BY_POLICY`. */
    outcome: text,
    /** Admin changes only, e.g. `upstream.update`. */
    action: text,
    /** Events at or after this instant. */
    since: Instant,
    /** Events before this instant. */
    until: Instant,
  })
  .superRefine((q, ctx) => {
    if (q.since && q.until && q.since.getTime() >= q.until.getTime()) {
      ctx.addIssue({ code: "custom", path: ["until"], message: "Must be after since" });
    }
  });
export type AuditQuery = z.output<typeof AuditQuerySchema>;

/** One audit event as `GET /v1/tenants/{tenant}/audit` shows it. */
export const AuditEventViewSchema = z.object({
  id: z.string(),
  at: z.string(),
  kind: AuditKindSchema,
  actor: z.string().nullable(),
  /** Admin changes: what was done, e.g. `upstream.create`, `policy.update`, `api-key.delete`. */
  action: z.string().nullable(),
  agent: z.string().nullable(),
  upstream: z.string().nullable(),
  tool: z.string().nullable(),
  decision: z.string().nullable(),
  ruleId: z.string().nullable(),
  outcome: z.string().nullable(),
  latencyMs: z.number().int().nullable(),
  requestId: z.string().nullable(),
  /**
   * Tool calls: `upstreamLatencyMs`, `argsSize`, `argsHash` (and `args` when the tenant captures
   * them). Admin changes: `action`, `actor`, `target`, `before`, `after` (no secrets: sealed
   * values and hashes left out, secret values masked).
   */
  details: z.record(z.string(), z.unknown()),
});
export type AuditEventView = z.infer<typeof AuditEventViewSchema>;
