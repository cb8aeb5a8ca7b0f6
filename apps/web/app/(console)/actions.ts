"use server";
import { SESSION_COOKIE } from "@gatehouse/shared";
import { cookies } from "next/headers";
import { redirect } from "next/navigation";
import { csrfOf } from "@/lib/actions";
import { api } from "@/lib/api";
import { relayCookies } from "@/lib/cookies";

async function end(formData: FormData, path: "/v1/auth/sign-out" | "/v1/auth/sign-out-everywhere") {
  const { response } = await (await api(csrfOf(formData))).POST(path);
  await relayCookies(response);
  (await cookies()).delete(SESSION_COOKIE);
  redirect("/sign-in");
}

export async function signOut(formData: FormData): Promise<void> {
  await end(formData, "/v1/auth/sign-out");
}

export async function signOutEverywhere(formData: FormData): Promise<void> {
  await end(formData, "/v1/auth/sign-out-everywhere");
}

export async function setTheme(formData: FormData): Promise<void> {
  const theme = String(formData.get("theme"));
  (await cookies()).set("theme", theme === "dark" || theme === "light" ? theme : "system", {
    path: "/",
    sameSite: "lax",
    maxAge: 365 * 86400,
  });
}
