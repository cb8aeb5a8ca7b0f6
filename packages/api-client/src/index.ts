// The typed client of the Gatehouse REST API. Types are generated from the API's OpenAPI document
// (scripts/generate.mjs), so a contract change breaks the build of whoever uses a changed route.
import createClient, { type Client } from "openapi-fetch";
import type { components, paths } from "./generated/openapi.js";

export type { components, paths };
export type ApiClient = Client<paths>;
/** The component schemas of the API: `Schemas["Tenant"]`, `Schemas["Upstream"]` … */
export type Schemas = components["schemas"];
/** `{error: {code, message, details}}` of every failed request. */
export type Problem = components["schemas"]["Problem"];

export interface ApiClientOptions {
  /** The API's base URL, e.g. `http://127.0.0.1:4000`. */
  baseUrl: string;
  /** A platform or tenant admin token (`Authorization: Bearer`). */
  token?: string;
  /** A `Cookie` header to send as is (the console forwards the browser's session cookie). */
  cookie?: string;
  /** The session's CSRF token, sent as `X-CSRF-Token` (needed on writes made with a session cookie). */
  csrfToken?: string;
  /** Extra headers on every request. */
  headers?: Record<string, string>;
  fetch?: typeof fetch;
}

/** A client bound to one caller. */
export function createApiClient(options: ApiClientOptions): ApiClient {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.cookie) headers.cookie = options.cookie;
  if (options.csrfToken) headers["x-csrf-token"] = options.csrfToken;
  return createClient<paths>({
    baseUrl: options.baseUrl.replace(/\/+$/, ""),
    headers,
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
}

/** A failed request's problem as an Error: `code` and `details` from the API, its message as is. */
export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }

  /** The per-field errors of a VALIDATION_FAILED answer. */
  get fieldErrors(): Array<{ path: string; message: string }> {
    return Array.isArray(this.details)
      ? this.details.filter(
          (d): d is { path: string; message: string } =>
            typeof d === "object" && d !== null && typeof (d as { path?: unknown }).path === "string",
        )
      : [];
  }
}

/**
 * The data of an openapi-fetch answer, or an `ApiError` thrown with the API's own problem:
 * `const tenant = await ok(api.GET("/v1/tenants/{tenant}", …))`.
 */
export async function ok<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (response.ok) return data as T;
  const problem = (error as Problem | undefined)?.error;
  throw new ApiError(
    response.status,
    problem?.code ?? "INTERNAL",
    problem?.message ?? `The API answered ${response.status}`,
    problem?.details,
  );
}
