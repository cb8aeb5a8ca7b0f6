import { ActionForm, SubmitButton } from "@/components/action-form";
import { api, getTenantAccess, load } from "@/lib/api";
import { changeRole, inviteMember, removeMember } from "./actions";

const ROLES = ["viewer", "admin", "owner"] as const;

export default async function MembersPage({ params }: { params: Promise<{ tenant: string }> }) {
  const { tenant: ref } = await params;
  const { tenant, canWrite, role } = await getTenantAccess(ref);
  const grantable = ROLES.filter((r) => role === "platform" || role === "owner" || r !== "owner");
  const page = await load(
    (await api()).GET("/v1/tenants/{tenant}/members", {
      params: { path: { tenant: tenant.slug }, query: { limit: 200 } },
    }),
  );
  return (
    <main id="main">
      <div className="page-head">
        <div>
          <h1>Members</h1>
          <p>
            People who sign in to this tenant's console. Viewers read; admins also change; owners also delete.
          </p>
        </div>
      </div>
      {canWrite ? (
        <section className="panel" aria-labelledby="invite-heading">
          <h2 id="invite-heading">Invite</h2>
          <ActionForm
            action={inviteMember.bind(null, tenant.slug)}
            label="Invite a member"
            className="form inline"
          >
            <div className="field">
              <label htmlFor="invite-email">Email</label>
              <input id="invite-email" name="email" type="email" required />
            </div>
            <div className="field">
              <label htmlFor="invite-role">Role</label>
              <select id="invite-role" name="role" defaultValue="viewer">
                {grantable.map((r) => (
                  <option key={r}>{r}</option>
                ))}
              </select>
            </div>
            <SubmitButton>Invite</SubmitButton>
          </ActionForm>
        </section>
      ) : null}
      <section className="panel" aria-labelledby="members-heading">
        <h2 id="members-heading">Members</h2>
        {page.items.length === 0 ? (
          <p className="muted">No members yet.</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th scope="col">Email</th>
                <th scope="col">Status</th>
                <th scope="col">Role</th>
                {canWrite ? <th scope="col">Actions</th> : null}
              </tr>
            </thead>
            <tbody>
              {page.items.map((m) => {
                const editable = canWrite && (grantable as readonly string[]).includes(m.role);
                return (
                  <tr key={m.id}>
                    <td>{m.email}</td>
                    <td>
                      <span className={`badge ${m.status === "active" ? "good" : ""}`}>{m.status}</span>
                    </td>
                    <td>
                      {editable ? (
                        <ActionForm
                          action={changeRole.bind(null, tenant.slug, m.id)}
                          label={`Role of ${m.email}`}
                          className="form inline"
                        >
                          <label htmlFor={`role-${m.id}`} className="sr-only">
                            Role of {m.email}
                          </label>
                          <select id={`role-${m.id}`} name="role" defaultValue={m.role}>
                            {grantable.map((r) => (
                              <option key={r}>{r}</option>
                            ))}
                          </select>
                          <SubmitButton variant="secondary">Change role</SubmitButton>
                        </ActionForm>
                      ) : (
                        m.role
                      )}
                    </td>
                    {canWrite ? (
                      <td>
                        {editable ? (
                          <ActionForm
                            action={removeMember.bind(null, tenant.slug, m.id)}
                            label={`Remove ${m.email}`}
                          >
                            <SubmitButton variant="danger">Remove {m.email}</SubmitButton>
                          </ActionForm>
                        ) : null}
                      </td>
                    ) : null}
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
      </section>
    </main>
  );
}
