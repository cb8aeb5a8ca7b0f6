// Server-side only: the console's server calls the API with the browser's session cookie. The
// browser never holds an API token, and never talks to the API itself.
import { type ApiClient, ApiError, createApiClient, ok, type Schemas } from "@gatehouse/api-client";
import { SESSION_COOKIE } from "@gatehouse/shared";
import { cookies, headers } from "next/headers";
import { notFound, redirect } from "next/navigation";
import { cache } from "react";
import { webConfig } from "./config";

export type { Schemas };
export { ApiError, ok };

/** A client acting as the signed-in person; `csrf` is needed for writes. */
export async function api(csrf?: string): Promise<ApiClient> {
  const session = (await cookies()).get(SESSION_COOKIE)?.value;
  const userAgent = (await headers()).get("user-agent") ?? undefined;
  return createApiClient({
    baseUrl: webConfig().apiUrl,
    ...(session ? { cookie: `${SESSION_COOKIE}=${session}` } : {}),
    ...(csrf ? { csrfToken: csrf } : {}),
    headers: userAgent ? { "user-agent": userAgent } : {},
  });
}

/** A client with no session (sign-in). */
export function anonymousApi(cookie?: string): ApiClient {
  return createApiClient({ baseUrl: webConfig().apiUrl, ...(cookie ? { cookie } : {}) });
}

/** Data for a page: a dead session goes to sign-in, a missing (or foreign) object is a 404. */
export async function load<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  try {
    return await ok(call);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) redirect("/sign-in?expired=1");
    if (err instanceof ApiError && err.status === 404) notFound();
    throw err;
  }
}

export type Me = Schemas["AuthMe"];

/** The signed-in person (once per request). */
export const getMe = cache(async (): Promise<Me> => {
  const session = (await cookies()).get(SESSION_COOKIE)?.value;
  if (!session) redirect("/sign-in");
  return load((await api()).GET("/v1/auth/me"));
});

export interface TenantAccess {
  me: Me;
  tenant: Schemas["Tenant"];
  role: "owner" | "admin" | "viewer" | "platform";
  canWrite: boolean;
  canOwn: boolean;
  csrf: string;
}

/** The tenant of a page and what the signed-in person may do in it (the API enforces the same). */
export const getTenantAccess = cache(async (ref: string): Promise<TenantAccess> => {
  const me = await getMe();
  const tenant = await load((await api()).GET("/v1/tenants/{tenant}", { params: { path: { tenant: ref } } }));
  const membership = me.memberships.find((m) => m.tenant.id === tenant.id);
  const role = me.platformAdmin ? "platform" : (membership?.role ?? "viewer");
  return {
    me,
    tenant,
    role,
    canWrite: role !== "viewer",
    canOwn: role === "platform" || role === "owner",
    csrf: me.session?.csrfToken ?? "",
  };
});
