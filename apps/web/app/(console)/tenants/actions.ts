"use server";
import { ok } from "@gatehouse/api-client";
import { attempt, csrfOf, type FormState, text } from "@/lib/actions";
import { api } from "@/lib/api";

export async function createTenant(_state: FormState, formData: FormData): Promise<FormState> {
  return attempt(async () => {
    const client = await api(csrfOf(formData));
    const tenant = await ok(
      client.POST("/v1/tenants", {
        body: { slug: text(formData, "slug") ?? "", name: text(formData, "name") ?? "" },
      }),
    );
    return { ok: `Tenant ${tenant.slug} created. Its gateway URL is ${tenant.gatewayUrl}` };
  });
}
