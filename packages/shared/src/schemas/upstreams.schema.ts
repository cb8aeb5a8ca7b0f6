import { z } from "zod";
import type { FieldError } from "./common.schema.js";
import {
  UpstreamAuthMcpOAuthSchema,
  UpstreamAuthOAuthAuthorizationCodeSchema,
  UpstreamAuthOAuthClientCredentialsSchema,
} from "./upstream-oauth.schema.js";

export const UPSTREAM_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export const UpstreamNameSchema = z
  .string()
  .regex(
    UPSTREAM_NAME_PATTERN,
    "Must be 1-63 lowercase letters, digits, '_' or '-', starting with a letter or digit",
  );

export const UpstreamTransportSchema = z.enum(["streamable-http", "sse", "stdio"]);
export type UpstreamTransport = z.infer<typeof UpstreamTransportSchema>;

/** An HTTP field name (RFC 9110 section 5.1: a token). */
const HeaderNameSchema = z
  .string()
  .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/, "Not a valid HTTP header name");
/** No CR/LF: a header value must not smuggle another header. */
const HeaderValueSchema = z
  .string()
  .max(8192)
  .regex(/^[^\r\n]*$/, "Must not contain line breaks");
const EnvNameSchema = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, "Not a valid environment variable name");

/**
 * How the gateway authenticates to the upstream, discriminated by `mode`. Secrets (`token`,
 * `value`) are sealed at rest and masked in responses. The OAuth modes (`oauth-client-credentials`,
 * `oauth-authorization-code`, `mcp-oauth`, see upstream-oauth.schema.ts) carry no secret: their
 * tokens live in `UpstreamCredential`s.
 */
export const UpstreamAuthNoneSchema = z.strictObject({ mode: z.literal("none") });
export const UpstreamAuthBearerSchema = z.strictObject({
  mode: z.literal("bearer"),
  /** Sent as `Authorization: Bearer <token>`. */
  token: HeaderValueSchema.min(1),
});
export const UpstreamAuthHeaderSchema = z.strictObject({
  mode: z.literal("header"),
  /** Sent as `<headerName>: <value>`, e.g. `X-API-Key`. */
  headerName: HeaderNameSchema,
  value: HeaderValueSchema.min(1),
});
export const UpstreamAuthSchema = z.discriminatedUnion("mode", [
  UpstreamAuthNoneSchema,
  UpstreamAuthBearerSchema,
  UpstreamAuthHeaderSchema,
  UpstreamAuthOAuthClientCredentialsSchema,
  UpstreamAuthOAuthAuthorizationCodeSchema,
  UpstreamAuthMcpOAuthSchema,
]);
export type UpstreamAuth = z.infer<typeof UpstreamAuthSchema>;
export type UpstreamAuthMode = UpstreamAuth["mode"];

/** Tool names are `toolPrefix + tool`; MCP tool names allow letters, digits, `_`, `-`, `.`. */
export const ToolPrefixSchema = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{0,64}$/, "Must be at most 64 letters, digits, '_', '-' or '.'");

const upstreamFields = {
  name: UpstreamNameSchema,
  description: z.string().max(1000).nullable(),
  transport: UpstreamTransportSchema,
  /** For `streamable-http` and `sse`. */
  url: z.url({ protocol: /^https?$/, error: "Must be an http(s) URL" }).nullable(),
  /** For `stdio`: the program to run, with `args` and `env`. */
  command: z.string().min(1).max(1000).nullable(),
  args: z.array(z.string().max(4000)).max(100),
  env: z.record(EnvNameSchema, z.string().max(32768)),
  /** Prepended to every tool name in the aggregated endpoint; defaults to `name + "_"`. */
  toolPrefix: ToolPrefixSchema,
  /** Static HTTP headers sent on every request to the upstream (sealed at rest). */
  headers: z.record(HeaderNameSchema, HeaderValueSchema),
  auth: UpstreamAuthSchema,
  enabled: z.boolean(),
  /** Per-request timeout toward the upstream, in milliseconds. */
  timeoutMs: z.number().int().min(100).max(600_000).nullable(),
};

interface TransportFields {
  transport: UpstreamTransport;
  url?: string | null;
  command?: string | null;
  args?: string[] | null;
  env?: Record<string, string> | null;
}

/** The fields each transport needs, and the ones it cannot use. Empty when consistent. */
export function upstreamTransportErrors(u: TransportFields): FieldError[] {
  const errors: FieldError[] = [];
  if (u.transport === "stdio") {
    if (!u.command) errors.push({ path: "command", message: "Required for the stdio transport" });
    if (u.url) errors.push({ path: "url", message: "Not used by the stdio transport; leave it out" });
  } else {
    if (!u.url) errors.push({ path: "url", message: `Required for the ${u.transport} transport` });
    if (u.command) errors.push({ path: "command", message: "Only used by the stdio transport" });
    if (u.args?.length) errors.push({ path: "args", message: "Only used by the stdio transport" });
    if (u.env && Object.keys(u.env).length > 0)
      errors.push({ path: "env", message: "Only used by the stdio transport" });
  }
  return errors;
}

/** `POST /v1/tenants/{tenant}/upstreams`. */
export const UpstreamCreateSchema = z
  .strictObject({
    name: upstreamFields.name,
    description: upstreamFields.description.optional(),
    transport: upstreamFields.transport,
    url: upstreamFields.url.optional(),
    command: upstreamFields.command.optional(),
    args: upstreamFields.args.optional(),
    env: upstreamFields.env.optional(),
    toolPrefix: upstreamFields.toolPrefix.optional(),
    headers: upstreamFields.headers.optional(),
    auth: upstreamFields.auth.optional(),
    enabled: upstreamFields.enabled.optional(),
    timeoutMs: upstreamFields.timeoutMs.optional(),
  })
  .superRefine((u, ctx) => {
    for (const e of upstreamTransportErrors(u))
      ctx.addIssue({ code: "custom", path: [e.path], message: e.message });
  });
export type UpstreamCreate = z.infer<typeof UpstreamCreateSchema>;

/**
 * `PATCH /v1/tenants/{tenant}/upstreams/{name}`: only the fields sent change; `null` clears.
 * `headers`, `env` and `args` replace the stored ones whole; a value equal to `SECRET_MASK`
 * keeps the stored secret. Transport rules are checked on the merged result.
 */
export const UpstreamUpdateSchema = z.strictObject({
  name: upstreamFields.name.optional(),
  description: upstreamFields.description.optional(),
  transport: upstreamFields.transport.optional(),
  url: upstreamFields.url.optional(),
  command: upstreamFields.command.optional(),
  args: upstreamFields.args.optional(),
  env: upstreamFields.env.optional(),
  toolPrefix: upstreamFields.toolPrefix.optional(),
  headers: upstreamFields.headers.optional(),
  auth: upstreamFields.auth.optional(),
  enabled: upstreamFields.enabled.optional(),
  timeoutMs: upstreamFields.timeoutMs.optional(),
});
export type UpstreamUpdate = z.infer<typeof UpstreamUpdateSchema>;

/** An upstream as the API shows it: secret values replaced by `SECRET_MASK`. */
export const UpstreamViewSchema = z.object({
  id: z.string(),
  name: z.string(),
  description: z.string().nullable(),
  transport: UpstreamTransportSchema,
  url: z.string().nullable(),
  command: z.string().nullable(),
  args: z.array(z.string()),
  env: z.record(z.string(), z.string()),
  toolPrefix: z.string(),
  headers: z.record(z.string(), z.string()),
  auth: z.object({
    mode: z.string(),
    token: z.string().optional(),
    headerName: z.string().optional(),
    value: z.string().optional(),
    /** OAuth modes: the OAuth client's id. */
    oauthClient: z.string().optional(),
    scopes: z.array(z.string()).optional(),
    resource: z.string().optional(),
    perUser: z.boolean().optional(),
    grant: z.enum(["authorization_code", "client_credentials"]).optional(),
  }),
  enabled: z.boolean(),
  timeoutMs: z.number().int().nullable(),
  toolsDiscoveredAt: z.string().nullable(),
  /** How many tools the last discovery found; null before the first. */
  toolCount: z.number().int().nullable(),
  health: z.string().nullable(),
  healthCheckedAt: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type UpstreamView = z.infer<typeof UpstreamViewSchema>;

/** One tool of an upstream's discovered catalog (MCP `Tool`, unprefixed). */
export const DiscoveredToolSchema = z
  .object({
    name: z.string(),
    title: z.string().optional(),
    description: z.string().optional(),
    inputSchema: z.record(z.string(), z.unknown()).optional(),
  })
  .passthrough();
export type DiscoveredTool = z.infer<typeof DiscoveredToolSchema>;

/** `GET …/upstreams/{name}/tools`: pages in name order; the cursor is the last name seen. */
export const ToolsPageQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(100),
  cursor: z.string().min(1).max(512).optional(),
});
export type ToolsPageQuery = z.infer<typeof ToolsPageQuerySchema>;
