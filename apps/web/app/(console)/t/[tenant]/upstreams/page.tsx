import Link from "next/link";
import { UpstreamForm } from "@/components/upstream-form";
import { api, getTenantAccess, load } from "@/lib/api";
import { createUpstream, testUpstream } from "./actions";

function Health({ health }: { health: string | null }) {
  if (!health) return <span className="badge">not probed yet</span>;
  return (
    <span className={`badge ${health === "ok" ? "good" : "bad"}`}>
      {health.length > 40 ? `${health.slice(0, 40)}…` : health}
    </span>
  );
}

export default async function UpstreamsPage({
  params,
  searchParams,
}: {
  params: Promise<{ tenant: string }>;
  searchParams: Promise<{ cursor?: string }>;
}) {
  const { tenant: ref } = await params;
  const { cursor } = await searchParams;
  const { tenant, canWrite } = await getTenantAccess(ref);
  const page = await load(
    (await api()).GET("/v1/tenants/{tenant}/upstreams", {
      params: { path: { tenant: tenant.slug }, query: { limit: 50, ...(cursor ? { cursor } : {}) } },
    }),
  );
  return (
    <main id="main">
      <div className="page-head">
        <div>
          <h1>Upstreams</h1>
          <p>
            The MCP servers behind <code>{tenant.gatewayUrl}</code>.
          </p>
        </div>
      </div>
      <section className="panel" aria-labelledby="upstreams-heading">
        <h2 id="upstreams-heading" className="sr-only">
          Upstream list
        </h2>
        {page.items.length === 0 ? (
          <p className="muted">No upstreams yet.</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Transport</th>
                <th scope="col">Auth</th>
                <th scope="col">Health</th>
                <th scope="col">Tools</th>
                <th scope="col">Enabled</th>
              </tr>
            </thead>
            <tbody>
              {page.items.map((u) => (
                <tr key={u.id}>
                  <td>
                    <Link href={`/t/${tenant.slug}/upstreams/${u.name}`}>{u.name}</Link>
                    <div className="muted">
                      <code>{u.url ?? u.command}</code>
                    </div>
                  </td>
                  <td>{u.transport}</td>
                  <td>{u.auth.mode}</td>
                  <td>
                    <Health health={u.health} />
                  </td>
                  <td>{u.toolCount ?? "—"}</td>
                  <td>{u.enabled ? "yes" : "no"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {page.nextCursor ? (
          <nav className="pager" aria-label="Pages">
            <Link href={`/t/${tenant.slug}/upstreams?cursor=${page.nextCursor}`}>Next page</Link>
          </nav>
        ) : null}
      </section>
      {canWrite ? (
        <section className="panel" aria-labelledby="add-heading">
          <h2 id="add-heading">Add an upstream</h2>
          <UpstreamForm
            save={createUpstream.bind(null, tenant.slug)}
            test={testUpstream.bind(null, tenant.slug)}
            submitLabel="Add upstream"
          />
        </section>
      ) : null}
    </main>
  );
}
