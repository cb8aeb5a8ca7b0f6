"use server";
import { ApiError, ok } from "@gatehouse/api-client";
import { redirect } from "next/navigation";
import type { FormState } from "@/lib/actions";
import { anonymousApi } from "@/lib/api";
import { relayCookies } from "@/lib/cookies";

/** The first-run sign-in: the ADMIN_TOKEN that `npm start` printed. */
export async function signInWithToken(_state: FormState, formData: FormData): Promise<FormState> {
  const token = String(formData.get("token") ?? "").trim();
  if (!token)
    return {
      error: "Paste the admin token that `npm start` printed",
      fields: [{ path: "token", message: "Required" }],
    };
  try {
    const call = anonymousApi().POST("/v1/auth/bootstrap", { body: { token } });
    const { response } = await call;
    await ok(call);
    await relayCookies(response);
  } catch (err) {
    if (err instanceof ApiError) return { error: err.message };
    throw err;
  }
  redirect("/tenants");
}
