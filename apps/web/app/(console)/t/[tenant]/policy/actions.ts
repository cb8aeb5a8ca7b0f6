"use server";
import { ok } from "@gatehouse/api-client";
import { attempt, csrfOf, type FormState, text } from "@/lib/actions";
import { api } from "@/lib/api";

export async function savePolicy(tenant: string, _state: FormState, formData: FormData): Promise<FormState> {
  let document: unknown;
  try {
    document = JSON.parse(String(formData.get("document") ?? ""));
  } catch (err) {
    return { error: `The policy is not valid JSON: ${(err as Error).message}` };
  }
  const version = Number(formData.get("version"));
  return attempt(async () => {
    const saved = await ok(
      (await api(csrfOf(formData))).PUT("/v1/tenants/{tenant}/policy", {
        params: { path: { tenant } },
        body: { document, ...(Number.isInteger(version) ? { version } : {}) } as never,
      }),
    );
    return { ok: `Saved as version ${saved.version}` };
  });
}

export async function simulate(tenant: string, _state: FormState, formData: FormData): Promise<FormState> {
  let args: Record<string, unknown> | undefined;
  const rawArgs = text(formData, "arguments");
  if (rawArgs) {
    try {
      args = JSON.parse(rawArgs) as Record<string, unknown>;
    } catch (err) {
      return {
        error: `Arguments are not valid JSON: ${(err as Error).message}`,
        fields: [{ path: "arguments", message: "Invalid JSON" }],
      };
    }
  }
  const roles = (text(formData, "roles") ?? "")
    .split(",")
    .map((r) => r.trim())
    .filter(Boolean);
  const agent = text(formData, "agent");
  return attempt(async () => {
    const decision = await ok(
      (await api(csrfOf(formData))).POST("/v1/tenants/{tenant}/policy/simulate", {
        params: { path: { tenant } },
        body: {
          principal: { ...(agent ? { agent } : {}), ...(roles.length ? { roles } : {}) },
          upstream: text(formData, "upstream") ?? "",
          tool: text(formData, "tool") ?? "",
          ...(args ? { arguments: args } : {}),
        },
      }),
    );
    return { data: decision };
  });
}
