import { z } from "zod";

// The console's only reader of process.env. It talks to the API over HTTP and nothing else.
const WebEnvSchema = z.object({
  /** Where the console's server reaches the REST API. */
  API_URL: z
    .url({ protocol: /^https?$/, error: "Must be an http(s) URL" })
    .optional()
    .transform((u) => u?.replace(/\/+$/, "")),
  API_PORT: z.coerce.number().int().min(1).max(65535).default(4000),
});

let parsed: { apiUrl: string } | undefined;

export function webConfig(): { apiUrl: string } {
  if (!parsed) {
    const env = WebEnvSchema.parse({
      API_URL: process.env.API_URL || undefined,
      API_PORT: process.env.API_PORT || undefined,
    });
    parsed = { apiUrl: env.API_URL ?? `http://127.0.0.1:${env.API_PORT}` };
  }
  return parsed;
}
