import { EgressEnvSchema, parseSecretsKey } from "@gatehouse/shared/node";
import { z } from "zod";
import { ConsoleEnvSchema } from "../auth/console.config.js";
import { OAuthEnvSchema } from "../oauth/oauth.config.js";

// Unset and empty mean the same thing for every variable.
const optional = <T extends z.ZodType>(schema: T) =>
  z.preprocess((v) => (v === "" ? undefined : v), schema.optional());

/** Every variable the API reads. The only reader of `process.env` is `parseApiEnv`. */
export const ApiEnvSchema = z.object({
  API_PORT: z.preprocess(
    (v) => (v === "" ? undefined : v),
    z.coerce.number().int().min(0).max(65535).default(4000),
  ),
  API_HOST: z.preprocess((v) => (v === "" ? undefined : v), z.string().default("0.0.0.0")),
  DATABASE_URL: optional(
    z.string().regex(/^postgres(ql)?:\/\//, "Must be a postgres:// or postgresql:// URL"),
  ),
  REDIS_URL: optional(z.string().regex(/^rediss?:\/\//, "Must be a redis:// or rediss:// URL")),
  REDIS_KEY_PREFIX: z.preprocess((v) => (v === "" ? undefined : v), z.string().default("gatehouse:")),
  ADMIN_TOKEN: optional(z.string().min(16, "Must be at least 16 characters")),
  SECRETS_KEY: optional(
    z.string().superRefine((value, ctx) => {
      try {
        parseSecretsKey(value);
      } catch (err) {
        ctx.addIssue({ code: "custom", message: (err as Error).message });
      }
    }),
  ),
  DATA_DIR: z.preprocess((v) => (v === "" ? undefined : v), z.string().default("./.data")),
  PUBLIC_GATEWAY_URL: z.preprocess(
    (v) => (v === "" ? undefined : v),
    z
      .url({ protocol: /^https?$/, error: "Must be an http(s) URL" })
      .default("http://localhost:8080")
      .transform((u) => u.replace(/\/+$/, "")),
  ),
  LOG_LEVEL: z.preprocess(
    (v) => (v === "" ? undefined : v),
    z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  ),
  /** `start:api` applies pending migrations before listening (concurrent starts are serialised by an advisory lock). */
  DB_MIGRATE_ON_START: z.preprocess(
    (v) => (v === "" ? undefined : v),
    z.stringbool({ error: "Must be true or false" }).default(true),
  ),
  ...OAuthEnvSchema.shape,
  ...ConsoleEnvSchema.shape,
  ...EgressEnvSchema.shape,
});
export type ApiEnv = z.infer<typeof ApiEnvSchema>;

/** What `createApiApp` needs: the parsed environment with both secrets present. */
export type ApiConfig = ApiEnv & { ADMIN_TOKEN: string; SECRETS_KEY: string };

/** Thrown at boot; the message names every bad variable. Never contains a variable's value. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Parses the environment once, failing with every bad variable named. */
export function parseApiEnv(env: Record<string, string | undefined>): ApiEnv {
  const result = ApiEnvSchema.safeParse(env);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`);
    throw new ConfigError(`Invalid environment:\n${lines.join("\n")}`);
  }
  return result.data;
}

/** For the API alone (`npm run start:api`): both secrets must come from the environment. */
export function requireSecrets(env: ApiEnv): ApiConfig {
  const missing = (["ADMIN_TOKEN", "SECRETS_KEY"] as const).filter((k) => !env[k]);
  if (missing.length > 0) {
    throw new ConfigError(
      `Invalid environment:\n${missing.map((k) => `  ${k}: Required (the embedded entry \`npm start\` generates it)`).join("\n")}`,
    );
  }
  return env as ApiConfig;
}

/** A config for tests and embedding: defaults for everything not given. */
export function apiConfig(
  overrides: Partial<ApiConfig> & Pick<ApiConfig, "ADMIN_TOKEN" | "SECRETS_KEY">,
): ApiConfig {
  return { ...ApiEnvSchema.parse({}), ...overrides } as ApiConfig;
}
