import Link from "next/link";
import { ActionForm, SubmitButton } from "@/components/action-form";
import { api, getMe, load } from "@/lib/api";
import { createTenant } from "./actions";

const PAGE_SIZE = 20;

export default async function TenantsPage({
  searchParams,
}: {
  searchParams: Promise<{ q?: string; cursor?: string }>;
}) {
  const { q, cursor } = await searchParams;
  const me = await getMe();
  const page = await load(
    (await api()).GET("/v1/tenants", {
      params: { query: { limit: PAGE_SIZE, ...(q ? { q } : {}), ...(cursor ? { cursor } : {}) } },
    }),
  );
  return (
    <main id="main">
      <div className="page-head">
        <div>
          <h1>Tenants</h1>
          <p>{me.platformAdmin ? "Every tenant of this Gatehouse." : "The tenants you are a member of."}</p>
        </div>
      </div>
      <section className="panel" aria-labelledby="list-heading">
        <h2 id="list-heading" className="sr-only">
          Tenant list
        </h2>
        <form className="form inline" aria-label="Search tenants">
          <div className="field">
            <label htmlFor="q">Search</label>
            <input id="q" name="q" type="search" defaultValue={q ?? ""} placeholder="slug or name" />
          </div>
          <button type="submit" className="button secondary">
            Search
          </button>
        </form>
        {page.items.length === 0 ? (
          <p className="muted">{q ? `No tenant matches “${q}”.` : "No tenants yet."}</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Slug</th>
                <th scope="col">Gateway URL</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {page.items.map((t) => (
                <tr key={t.id}>
                  <td>
                    <Link href={`/t/${t.slug}/upstreams`}>{t.name}</Link>
                  </td>
                  <td>
                    <code>{t.slug}</code>
                  </td>
                  <td>
                    <code>{t.gatewayUrl}</code>
                  </td>
                  <td>{new Date(t.createdAt).toISOString().slice(0, 10)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <nav className="pager" aria-label="Pages">
          {cursor ? <Link href={`/tenants${q ? `?q=${encodeURIComponent(q)}` : ""}`}>First page</Link> : null}
          {page.nextCursor ? (
            <Link
              href={`/tenants?${new URLSearchParams({ ...(q ? { q } : {}), cursor: page.nextCursor }).toString()}`}
            >
              Next page
            </Link>
          ) : null}
        </nav>
      </section>
      {me.platformAdmin ? (
        <section className="panel" aria-labelledby="create-heading">
          <h2 id="create-heading">Create a tenant</h2>
          <ActionForm action={createTenant} label="Create a tenant" className="form">
            <div className="grid-2">
              <div className="field">
                <label htmlFor="name">Name</label>
                <input id="name" name="name" required maxLength={100} />
              </div>
              <div className="field">
                <label htmlFor="slug">Slug</label>
                <input id="slug" name="slug" required aria-describedby="slug-hint" />
                <span id="slug-hint" className="hint">
                  2–63 lowercase letters, digits or dashes; part of the gateway URL.
                </span>
              </div>
            </div>
            <div>
              <SubmitButton>Create tenant</SubmitButton>
            </div>
          </ActionForm>
        </section>
      ) : null}
    </main>
  );
}
