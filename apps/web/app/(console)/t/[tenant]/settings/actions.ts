"use server";
import { ok } from "@gatehouse/api-client";
import { redirect } from "next/navigation";
import { attempt, csrfOf, type FormState, text } from "@/lib/actions";
import { api } from "@/lib/api";

export async function renameTenant(
  tenant: string,
  _state: FormState,
  formData: FormData,
): Promise<FormState> {
  return attempt(async () => {
    const t = await ok(
      (await api(csrfOf(formData))).PATCH("/v1/tenants/{tenant}", {
        params: { path: { tenant } },
        body: { name: text(formData, "name") ?? "" },
      }),
    );
    return { ok: `Renamed to ${t.name}` };
  });
}

export async function deleteTenant(
  tenant: string,
  _state: FormState,
  formData: FormData,
): Promise<FormState> {
  if (text(formData, "confirm") !== tenant) {
    return {
      error: `Type ${tenant} to confirm`,
      fields: [{ path: "confirm", message: `Must be ${tenant}` }],
    };
  }
  const state = await attempt(async () => {
    await ok((await api(csrfOf(formData))).DELETE("/v1/tenants/{tenant}", { params: { path: { tenant } } }));
    return { ok: "Deleted" };
  });
  if (state.ok) redirect("/tenants");
  return state;
}
