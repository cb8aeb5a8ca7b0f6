"use server";
import { ok } from "@gatehouse/api-client";
import { attempt, csrfOf, type FormState, text } from "@/lib/actions";
import { api } from "@/lib/api";

type Role = "owner" | "admin" | "viewer";

export async function inviteMember(
  tenant: string,
  _state: FormState,
  formData: FormData,
): Promise<FormState> {
  return attempt(async () => {
    const m = await ok(
      (await api(csrfOf(formData))).POST("/v1/tenants/{tenant}/members", {
        params: { path: { tenant } },
        body: { email: text(formData, "email") ?? "", role: (text(formData, "role") ?? "viewer") as Role },
      }),
    );
    return { ok: `Invited ${m.email} as ${m.role}. They join when they first sign in with that email.` };
  });
}

export async function changeRole(
  tenant: string,
  id: string,
  _state: FormState,
  formData: FormData,
): Promise<FormState> {
  return attempt(async () => {
    const m = await ok(
      (await api(csrfOf(formData))).PATCH("/v1/tenants/{tenant}/members/{id}", {
        params: { path: { tenant, id } },
        body: { role: (text(formData, "role") ?? "viewer") as Role },
      }),
    );
    return { ok: `${m.email} is now ${m.role}` };
  });
}

export async function removeMember(
  tenant: string,
  id: string,
  _state: FormState,
  formData: FormData,
): Promise<FormState> {
  return attempt(async () => {
    await ok(
      (await api(csrfOf(formData))).DELETE("/v1/tenants/{tenant}/members/{id}", {
        params: { path: { tenant, id } },
      }),
    );
    return { ok: "Removed" };
  });
}
