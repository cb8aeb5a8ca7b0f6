"use server";
import { ok } from "@gatehouse/api-client";
import { redirect } from "next/navigation";
import { attempt, csrfOf, type FormState } from "@/lib/actions";
import { api } from "@/lib/api";

function bodyOf(formData: FormData): Record<string, unknown> {
  try {
    return JSON.parse(String(formData.get("body") ?? "{}")) as Record<string, unknown>;
  } catch {
    return {};
  }
}

export async function createUpstream(
  tenant: string,
  _state: FormState,
  formData: FormData,
): Promise<FormState> {
  const state = await attempt(async () => {
    const client = await api(csrfOf(formData));
    const created = await ok(
      client.POST("/v1/tenants/{tenant}/upstreams", {
        params: { path: { tenant } },
        body: bodyOf(formData) as never,
      }),
    );
    return { ok: `Upstream ${created.name} added`, data: { name: created.name } };
  });
  if (state.ok) redirect(`/t/${tenant}/upstreams/${(state.data as { name: string }).name}`);
  return state;
}

export async function updateUpstream(
  tenant: string,
  name: string,
  _state: FormState,
  formData: FormData,
): Promise<FormState> {
  const body = bodyOf(formData);
  const state = await attempt(async () => {
    const client = await api(csrfOf(formData));
    const updated = await ok(
      client.PATCH("/v1/tenants/{tenant}/upstreams/{name}", {
        params: { path: { tenant, name } },
        body: body as never,
      }),
    );
    return { ok: "Saved", data: { name: updated.name } };
  });
  if (state.ok && (state.data as { name: string }).name !== name)
    redirect(`/t/${tenant}/upstreams/${(state.data as { name: string }).name}`);
  return state;
}

export async function testUpstream(
  tenant: string,
  _state: FormState,
  formData: FormData,
): Promise<FormState> {
  return attempt(async () => {
    const client = await api(csrfOf(formData));
    const result = await ok(
      client.POST("/v1/tenants/{tenant}/upstream-test", {
        params: { path: { tenant } },
        body: bodyOf(formData) as never,
      }),
    );
    return { data: result };
  });
}

export async function deleteUpstream(
  tenant: string,
  name: string,
  _state: FormState,
  formData: FormData,
): Promise<FormState> {
  const state = await attempt(async () => {
    const client = await api(csrfOf(formData));
    await ok(client.DELETE("/v1/tenants/{tenant}/upstreams/{name}", { params: { path: { tenant, name } } }));
    return { ok: "Deleted" };
  });
  if (state.ok) redirect(`/t/${tenant}/upstreams`);
  return state;
}
