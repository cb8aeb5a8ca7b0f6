"use server";
import { ok } from "@gatehouse/api-client";
import { attempt, csrfOf, type FormState, text } from "@/lib/actions";
import { api } from "@/lib/api";

export async function createToken(tenant: string, _state: FormState, formData: FormData): Promise<FormState> {
  return attempt(async () => {
    const t = await ok(
      (await api(csrfOf(formData))).POST("/v1/tenants/{tenant}/tokens", {
        params: { path: { tenant } },
        body: {
          name: text(formData, "name") ?? "",
          role: (text(formData, "role") ?? "admin") as "owner" | "admin" | "viewer",
        },
      }),
    );
    return { ok: `Token ${t.name} created`, secret: t.token };
  });
}

export async function revokeToken(
  tenant: string,
  id: string,
  _state: FormState,
  formData: FormData,
): Promise<FormState> {
  return attempt(async () => {
    await ok(
      (await api(csrfOf(formData))).DELETE("/v1/tenants/{tenant}/tokens/{id}", {
        params: { path: { tenant, id } },
      }),
    );
    return { ok: "Revoked" };
  });
}
