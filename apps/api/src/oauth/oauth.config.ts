import { z } from "zod";

const unset = (v: unknown) => (v === "" ? undefined : v);

/**
 * The variables of upstream OAuth and the background jobs. Merged into the API's environment
 * schema; `oauthSettings` also accepts a config without them (defaults apply).
 */
export const OAuthEnvSchema = z.object({
  /** Public base URL of the REST API: OAuth redirect URIs and reconnect links point here. */
  PUBLIC_API_URL: z.preprocess(
    unset,
    z
      .url({ protocol: /^https?$/, error: "Must be an http(s) URL" })
      .optional()
      .transform((u) => u?.replace(/\/+$/, "")),
  ),
  /** Allow plain-http authorization servers that are not on loopback (never in production). */
  OAUTH_ALLOW_HTTP: z.preprocess(unset, z.enum(["true", "false"]).default("false")),
  /** Timeout of one request to an authorization server or an upstream probe. */
  OAUTH_HTTP_TIMEOUT_MS: z.preprocess(unset, z.coerce.number().int().min(100).max(120_000).default(10_000)),
  /** How often each upstream's tool catalog is discovered. */
  TOOL_DISCOVERY_INTERVAL_MS: z.preprocess(unset, z.coerce.number().int().min(1_000).default(300_000)),
  /** How often each upstream is probed for health. */
  HEALTH_PROBE_INTERVAL_MS: z.preprocess(unset, z.coerce.number().int().min(1_000).default(60_000)),
  /** Worker only: serve /healthz and /metrics on this port (unset: no HTTP server). */
  WORKER_PORT: z.preprocess(unset, z.coerce.number().int().min(0).max(65535).optional()),
});
export type OAuthEnv = z.infer<typeof OAuthEnvSchema>;

export interface OAuthSettings {
  publicApiUrl: string;
  callbackUrl: string;
  clientMetadataUrl: string;
  allowHttp: boolean;
  httpTimeoutMs: number;
  discoveryIntervalMs: number;
  healthIntervalMs: number;
  workerPort: number | undefined;
  /** Origins a connect flow may send the person back to (`returnTo`): the API's and the console's. */
  returnToOrigins: ReadonlySet<string>;
}

/** Settings from the API config (whatever of `OAuthEnvSchema` it carries; defaults for the rest). */
export function oauthSettings(config: Record<string, unknown>): OAuthSettings {
  const env = OAuthEnvSchema.parse(
    Object.fromEntries(Object.keys(OAuthEnvSchema.shape).map((k) => [k, config[k]])),
  );
  const port = typeof config.API_PORT === "number" ? config.API_PORT : 4000;
  const publicApiUrl = env.PUBLIC_API_URL ?? `http://localhost:${port}`;
  return {
    publicApiUrl,
    callbackUrl: `${publicApiUrl}/v1/oauth/callback`,
    clientMetadataUrl: `${publicApiUrl}/v1/oauth/client-metadata.json`,
    allowHttp: env.OAUTH_ALLOW_HTTP === "true",
    httpTimeoutMs: env.OAUTH_HTTP_TIMEOUT_MS,
    discoveryIntervalMs: env.TOOL_DISCOVERY_INTERVAL_MS,
    healthIntervalMs: env.HEALTH_PROBE_INTERVAL_MS,
    workerPort: env.WORKER_PORT,
    returnToOrigins: new Set(
      [publicApiUrl, config.CONSOLE_PUBLIC_URL]
        .filter((u): u is string => typeof u === "string" && URL.canParse(u))
        .map((u) => new URL(u).origin),
    ),
  };
}

/**
 * Whether a connect flow may redirect to `returnTo`: only back to Gatehouse's own API or console,
 * so a connect link cannot be made into an open redirect that carries the person elsewhere.
 */
export function isAllowedReturnTo(
  settings: Pick<OAuthSettings, "returnToOrigins">,
  returnTo: string,
): boolean {
  return URL.canParse(returnTo) && settings.returnToOrigins.has(new URL(returnTo).origin);
}
