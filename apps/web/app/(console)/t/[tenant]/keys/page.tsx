import { ActionForm, SubmitButton } from "@/components/action-form";
import { api, getTenantAccess, load } from "@/lib/api";
import { createKey, revokeKey } from "./actions";

const day = (s: string | null) => (s ? s.slice(0, 10) : "—");

export default async function KeysPage({ params }: { params: Promise<{ tenant: string }> }) {
  const { tenant: ref } = await params;
  const { tenant, canWrite } = await getTenantAccess(ref);
  const page = await load(
    (await api()).GET("/v1/tenants/{tenant}/api-keys", {
      params: { path: { tenant: tenant.slug }, query: { limit: 100 } },
    }),
  );
  return (
    <main id="main">
      <div className="page-head">
        <div>
          <h1>API keys</h1>
          <p>Keys agents send to the gateway. Only a hash is stored; a key is shown once.</p>
        </div>
      </div>
      {canWrite ? (
        <section className="panel" aria-labelledby="new-key">
          <h2 id="new-key">Create a key</h2>
          <ActionForm
            action={createKey.bind(null, tenant.slug)}
            label="Create a key"
            secretLabel="Your new key. Copy it now: it is shown this once."
          >
            <div className="grid-2">
              <div className="field">
                <label htmlFor="key-name">Name</label>
                <input id="key-name" name="name" required maxLength={100} />
              </div>
              <div className="field">
                <label htmlFor="key-agent">Agent</label>
                <input id="key-agent" name="agent" aria-describedby="key-agent-hint" />
                <span id="key-agent-hint" className="hint">
                  Matches <code>agent:NAME</code> in policy rules.
                </span>
              </div>
              <div className="field">
                <label htmlFor="key-roles">Roles</label>
                <input id="key-roles" name="roles" aria-describedby="key-roles-hint" />
                <span id="key-roles-hint" className="hint">
                  Comma separated; match <code>role:NAME</code> in policy rules.
                </span>
              </div>
              <div className="field">
                <label htmlFor="key-rate">Rate limit per minute</label>
                <input id="key-rate" name="perMinute" type="number" min={1} />
              </div>
              <div className="field">
                <label htmlFor="key-expires">Expires on</label>
                <input id="key-expires" name="expiresAt" type="date" />
              </div>
            </div>
            <div>
              <SubmitButton>Create key</SubmitButton>
            </div>
          </ActionForm>
        </section>
      ) : null}
      <section className="panel" aria-labelledby="keys-heading">
        <h2 id="keys-heading">Keys</h2>
        {page.items.length === 0 ? (
          <p className="muted">No keys yet.</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Prefix</th>
                <th scope="col">Agent</th>
                <th scope="col">Roles</th>
                <th scope="col">Rate limit</th>
                <th scope="col">Last used</th>
                <th scope="col">Expires</th>
                {canWrite ? <th scope="col">Actions</th> : null}
              </tr>
            </thead>
            <tbody>
              {page.items.map((k) => (
                <tr key={k.id}>
                  <td>{k.name}</td>
                  <td>
                    <code>{k.prefix}…</code>
                  </td>
                  <td>{k.agent ?? "—"}</td>
                  <td>{k.roles.join(", ") || "—"}</td>
                  <td>{k.rateLimit ? `${k.rateLimit.perMinute}/min` : "—"}</td>
                  <td>{day(k.lastUsedAt)}</td>
                  <td>{day(k.expiresAt)}</td>
                  {canWrite ? (
                    <td>
                      <ActionForm
                        action={revokeKey.bind(null, tenant.slug, k.id)}
                        label={`Revoke ${k.name}`}
                        className="actions"
                      >
                        <SubmitButton variant="danger">Revoke {k.name}</SubmitButton>
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
