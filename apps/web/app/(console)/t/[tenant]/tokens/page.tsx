import { ActionForm, SubmitButton } from "@/components/action-form";
import { api, getTenantAccess, load } from "@/lib/api";
import { createToken, revokeToken } from "./actions";

export default async function TokensPage({ params }: { params: Promise<{ tenant: string }> }) {
  const { tenant: ref } = await params;
  const { tenant, canWrite, role } = await getTenantAccess(ref);
  const roles = (["viewer", "admin", "owner"] as const).filter(
    (r) => role === "platform" || role === "owner" || r !== "owner",
  );
  const page = await load(
    (await api()).GET("/v1/tenants/{tenant}/tokens", {
      params: { path: { tenant: tenant.slug }, query: { limit: 100 } },
    }),
  );
  return (
    <main id="main">
      <div className="page-head">
        <div>
          <h1>Admin tokens</h1>
          <p>
            Tokens for scripts that call the REST API for this tenant only (<code>mgt_…</code>).
          </p>
        </div>
      </div>
      {canWrite ? (
        <section className="panel" aria-labelledby="new-token">
          <h2 id="new-token">Create a token</h2>
          <ActionForm
            action={createToken.bind(null, tenant.slug)}
            label="Create a token"
            className="form"
            secretLabel="Your new token. Copy it now: it is shown this once."
          >
            <div className="grid-2">
              <div className="field">
                <label htmlFor="token-name">Name</label>
                <input id="token-name" name="name" required maxLength={100} />
              </div>
              <div className="field">
                <label htmlFor="token-role">Role</label>
                <select id="token-role" name="role" defaultValue="admin">
                  {roles.map((r) => (
                    <option key={r}>{r}</option>
                  ))}
                </select>
              </div>
            </div>
            <div>
              <SubmitButton>Create token</SubmitButton>
            </div>
          </ActionForm>
        </section>
      ) : null}
      <section className="panel" aria-labelledby="tokens-heading">
        <h2 id="tokens-heading">Tokens</h2>
        {page.items.length === 0 ? (
          <p className="muted">No tokens yet.</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Prefix</th>
                <th scope="col">Role</th>
                <th scope="col">Last used</th>
                {canWrite ? <th scope="col">Actions</th> : null}
              </tr>
            </thead>
            <tbody>
              {page.items.map((t) => (
                <tr key={t.id}>
                  <td>{t.name}</td>
                  <td>
                    <code>{t.prefix}…</code>
                  </td>
                  <td>{t.role}</td>
                  <td>{t.lastUsedAt?.slice(0, 10) ?? "—"}</td>
                  {canWrite ? (
                    <td>
                      <ActionForm
                        action={revokeToken.bind(null, tenant.slug, t.id)}
                        label={`Revoke ${t.name}`}
                      >
                        <SubmitButton variant="danger">Revoke {t.name}</SubmitButton>
                      </ActionForm>
                    </td>
                  ) : null}
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </main>
  );
}
