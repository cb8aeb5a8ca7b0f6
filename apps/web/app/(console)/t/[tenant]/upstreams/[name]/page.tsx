import Link from "next/link";
import { ActionForm, SubmitButton } from "@/components/action-form";
import { UpstreamForm } from "@/components/upstream-form";
import { api, getTenantAccess, load } from "@/lib/api";
import { deleteUpstream, testUpstream, updateUpstream } from "../actions";

export default async function UpstreamPage({
  params,
  searchParams,
}: {
  params: Promise<{ tenant: string; name: string }>;
  searchParams: Promise<{ q?: string }>;
}) {
  const { tenant: ref, name } = await params;
  const { q } = await searchParams;
  const { tenant, canWrite } = await getTenantAccess(ref);
  const client = await api();
  const path = { tenant: tenant.slug, name };
  const upstream = await load(client.GET("/v1/tenants/{tenant}/upstreams/{name}", { params: { path } }));
  // Every page of the catalog (a page is {items, nextCursor}); the search below runs over all of it.
  const tools = [];
  for (let cursor: string | undefined, page = 0; page < 50; page++) {
    const got = await load(
      client.GET("/v1/tenants/{tenant}/upstreams/{name}/tools", {
        params: { path, query: { limit: 200, ...(cursor ? { cursor } : {}) } },
      }),
    );
    tools.push(...got.items);
    if (!got.nextCursor) break;
    cursor = got.nextCursor;
  }
  const needle = q?.toLowerCase();
  const shown = needle
    ? tools.filter(
        (t) => t.name.toLowerCase().includes(needle) || (t.description ?? "").toLowerCase().includes(needle),
      )
    : tools;
  const mode = upstream.auth.mode;
  return (
    <main id="main">
      <div className="page-head">
        <div>
          <p>
            <Link href={`/t/${tenant.slug}/upstreams`}>Upstreams</Link> /
          </p>
          <h1>{upstream.name}</h1>
          <p>
            {upstream.transport} · auth {mode} · {upstream.enabled ? "enabled" : "disabled"} · health{" "}
            {upstream.health ?? "not probed yet"}
          </p>
        </div>
      </div>
      {canWrite &&
      (upstream.transport === "streamable-http" || upstream.transport === "sse") &&
      (mode === "none" || mode === "bearer" || mode === "header") ? (
        <section className="panel" aria-labelledby="edit-heading">
          <h2 id="edit-heading">Edit</h2>
          <UpstreamForm
            save={updateUpstream.bind(null, tenant.slug, upstream.name)}
            test={testUpstream.bind(null, tenant.slug)}
            submitLabel="Save changes"
            initial={{
              name: upstream.name,
              description: upstream.description ?? "",
              transport: upstream.transport,
              url: upstream.url ?? "",
              toolPrefix: upstream.toolPrefix,
              authMode: mode,
              token: upstream.auth.token ?? "",
              headerName: upstream.auth.headerName ?? "",
              headerValue: upstream.auth.value ?? "",
              enabled: upstream.enabled,
            }}
          />
        </section>
      ) : null}
      <section className="panel" aria-labelledby="tools-heading">
        <h2 id="tools-heading">Tools ({tools.length})</h2>
        <form className="form inline" aria-label="Search tools">
          <div className="field">
            <label htmlFor="tool-q">Search tools</label>
            <input id="tool-q" name="q" type="search" defaultValue={q ?? ""} />
          </div>
          <button type="submit" className="button secondary">
            Search
          </button>
        </form>
        {tools.length === 0 ? (
          <p className="muted">
            No tools discovered yet. Discovery runs in the background after a change and every few minutes.
          </p>
        ) : null}
        {shown.map((t) => (
          <details key={t.name} className="tool">
            <summary>
              <code>
                {upstream.toolPrefix}
                {t.name}
              </code>{" "}
              <span className="muted">{t.description}</span>
            </summary>
            <h3>Input schema</h3>
            <pre>
              <code>{JSON.stringify(t.inputSchema ?? {}, null, 2)}</code>
            </pre>
          </details>
        ))}
      </section>
      {canWrite ? (
        <details className="danger-zone">
          <summary>Delete this upstream</summary>
          <p>
            Deleting <strong>{upstream.name}</strong> removes its {tools.length} tools from every agent of
            this tenant, and its stored credentials.
          </p>
          <ActionForm action={deleteUpstream.bind(null, tenant.slug, upstream.name)} label="Delete upstream">
            <SubmitButton variant="danger">Delete {upstream.name}</SubmitButton>
          </ActionForm>
        </details>
      ) : null}
    </main>
  );
}
