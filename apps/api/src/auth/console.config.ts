import { z } from "zod";

const unset = (v: unknown) => (v === "" ? undefined : v);

/** The console's sign-in and session variables, merged into the API's environment schema. */
export const ConsoleEnvSchema = z.object({
  /** Where people open the console: the OIDC redirect URI is `${CONSOLE_PUBLIC_URL}/auth/callback`. */
  CONSOLE_PUBLIC_URL: z.preprocess(
    unset,
    z
      .url({ protocol: /^https?$/, error: "Must be an http(s) URL" })
      .default("http://localhost:3000")
      .transform((u) => u.replace(/\/+$/, "")),
  ),
  /** Platform OpenID Connect issuer for console sign-in (unset: no OIDC sign-in). */
  CONSOLE_OIDC_ISSUER: z.preprocess(
    unset,
    z.url({ protocol: /^https?$/, error: "Must be an http(s) URL" }).optional(),
  ),
  CONSOLE_OIDC_CLIENT_ID: z.preprocess(unset, z.string().optional()),
  CONSOLE_OIDC_CLIENT_SECRET: z.preprocess(unset, z.string().optional()),
  CONSOLE_OIDC_SCOPES: z.preprocess(unset, z.string().default("openid email profile")),
  /** Platform admins: comma-separated verified emails and/or `sub:<subject>` entries. */
  CONSOLE_PLATFORM_ADMINS: z.preprocess(unset, z.string().default("")),
  /** Sign in to the console with ADMIN_TOKEN (the first-run path). On by default in `npm start` only. */
  CONSOLE_BOOTSTRAP_SIGNIN: z.preprocess(unset, z.stringbool({ error: "Must be true or false" }).optional()),
  /** A session unused this long ends. */
  CONSOLE_SESSION_IDLE_MINUTES: z.preprocess(unset, z.coerce.number().int().min(1).max(10_080).default(60)),
  /** A session ends this long after sign-in, used or not. */
  CONSOLE_SESSION_MAX_HOURS: z.preprocess(unset, z.coerce.number().int().min(1).max(720).default(12)),
});
export type ConsoleEnv = z.infer<typeof ConsoleEnvSchema>;

export interface ConsoleSettings {
  publicUrl: string;
  redirectUri: string;
  oidc: { issuer: string; clientId: string; clientSecret: string | undefined; scopes: string } | null;
  platformAdmins: { emails: Set<string>; subjects: Set<string> };
  bootstrap: boolean;
  idleMs: number;
  maxMs: number;
}

/** Settings from the parsed API config (tests may leave out what has a default). */
export function consoleSettings(config: Partial<ConsoleEnv>): ConsoleSettings {
  const env = { ...ConsoleEnvSchema.parse({}), ...definedOnly(config) };
  const emails = new Set<string>();
  const subjects = new Set<string>();
  for (const entry of env.CONSOLE_PLATFORM_ADMINS.split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    if (entry.startsWith("sub:")) subjects.add(entry.slice(4));
    else emails.add(entry.toLowerCase());
  }
  return {
    publicUrl: env.CONSOLE_PUBLIC_URL,
    redirectUri: `${env.CONSOLE_PUBLIC_URL}/auth/callback`,
    oidc:
      env.CONSOLE_OIDC_ISSUER && env.CONSOLE_OIDC_CLIENT_ID
        ? {
            issuer: env.CONSOLE_OIDC_ISSUER,
            clientId: env.CONSOLE_OIDC_CLIENT_ID,
            clientSecret: env.CONSOLE_OIDC_CLIENT_SECRET,
            scopes: env.CONSOLE_OIDC_SCOPES,
          }
        : null,
    platformAdmins: { emails, subjects },
    bootstrap: env.CONSOLE_BOOTSTRAP_SIGNIN ?? false,
    idleMs: env.CONSOLE_SESSION_IDLE_MINUTES * 60_000,
    maxMs: env.CONSOLE_SESSION_MAX_HOURS * 3_600_000,
  };
}

function definedOnly(config: Partial<ConsoleEnv>): Partial<ConsoleEnv> {
  return Object.fromEntries(
    Object.keys(ConsoleEnvSchema.shape)
      .map((k) => [k, (config as Record<string, unknown>)[k]])
      .filter(([, v]) => v !== undefined),
  );
}
