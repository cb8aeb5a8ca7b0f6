import { ActionForm, SubmitButton } from "@/components/action-form";
import { api, getTenantAccess, load } from "@/lib/api";
import { deleteTenant, renameTenant } from "./actions";

const count = (page: { items: unknown[]; nextCursor: string | null }) =>
  `${page.items.length}${page.nextCursor ? "+" : ""}`;

export default async function SettingsPage({ params }: { params: Promise<{ tenant: string }> }) {
  const { tenant: ref } = await params;
  const { tenant, canWrite, canOwn } = await getTenantAccess(ref);
  const client = await api();
  const path = { tenant: tenant.slug };
  const query = { limit: 200 };
  const [upstreams, keys, members, tokens] = canOwn
    ? await Promise.all([
        load(client.GET("/v1/tenants/{tenant}/upstreams", { params: { path, query } })),
        load(client.GET("/v1/tenants/{tenant}/api-keys", { params: { path, query } })),
        load(client.GET("/v1/tenants/{tenant}/members", { params: { path, query } })),
        load(client.GET("/v1/tenants/{tenant}/tokens", { params: { path, query } })),
      ])
    : [];
  return (
    <main id="main">
      <div className="page-head">
        <div>
          <h1>Settings</h1>
          <p>
            Slug <code>{tenant.slug}</code> · config version {tenant.configVersion}
          </p>
        </div>
      </div>
      <section className="panel" aria-labelledby="name-heading">
        <h2 id="name-heading">Name</h2>
        {canWrite ? (
          <ActionForm
            action={renameTenant.bind(null, tenant.slug)}
            label="Rename tenant"
            className="form inline"
          >
            <div className="field">
              <label htmlFor="tenant-name">Tenant name</label>
              <input id="tenant-name" name="name" defaultValue={tenant.name} required maxLength={100} />
            </div>
            <SubmitButton>Rename</SubmitButton>
          </ActionForm>
        ) : (
          <p>{tenant.name}</p>
        )}
      </section>
      {canOwn && upstreams && keys && members && tokens ? (
        <details className="danger-zone">
          <summary>Delete this tenant</summary>
          <p>Deleting {tenant.name} removes, at once and for good:</p>
          <ul>
            <li>{count(upstreams)} upstreams and their stored credentials</li>
            <li>{count(keys)} API keys (every agent using them is refused)</li>
            <li>
              {count(members)} members and {count(tokens)} admin tokens
            </li>
            <li>its policy history and audit log</li>
          </ul>
          <ActionForm action={deleteTenant.bind(null, tenant.slug)} label="Delete tenant">
            <div className="field">
              <label htmlFor="confirm">Type {tenant.slug} to confirm</label>
              <input id="confirm" name="confirm" autoComplete="off" required />
            </div>
            <div>
              <SubmitButton variant="danger">Delete tenant</SubmitButton>
            </div>
          </ActionForm>
        </details>
      ) : null}
    </main>
  );
}
