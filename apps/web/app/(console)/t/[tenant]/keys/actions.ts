"use server";
import { ok } from "@gatehouse/api-client";
import { attempt, csrfOf, type FormState, text } from "@/lib/actions";
import { api } from "@/lib/api";

export async function createKey(tenant: string, _state: FormState, formData: FormData): Promise<FormState> {
  return attempt(async () => {
    const roles = (text(formData, "roles") ?? "")
      .split(",")
      .map((r) => r.trim())
      .filter(Boolean);
    const perMinute = Number(text(formData, "perMinute") ?? "");
    const expires = text(formData, "expiresAt");
    const agent = text(formData, "agent");
    const created = await ok(
      (await api(csrfOf(formData))).POST("/v1/tenants/{tenant}/api-keys", {
        params: { path: { tenant } },
        body: {
          name: text(formData, "name") ?? "",
          ...(agent ? { agent } : {}),
          ...(roles.length ? { roles } : {}),
          ...(expires ? { expiresAt: new Date(`${expires}T23:59:59Z`).toISOString() } : {}),
          ...(perMinute > 0 ? { rateLimit: { perMinute } } : {}),
        },
      }),
    );
    return { ok: `Key ${created.name} created`, secret: created.key };
  });
}

export async function revokeKey(
  tenant: string,
  id: string,
  _state: FormState,
  formData: FormData,
): Promise<FormState> {
  return attempt(async () => {
    await ok(
      (await api(csrfOf(formData))).DELETE("/v1/tenants/{tenant}/api-keys/{id}", {
        params: { path: { tenant, id } },
      }),
    );
    return { ok: "Revoked" };
  });
}
