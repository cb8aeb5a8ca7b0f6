import { ConnectSnippets } from "@/components/connect-snippets";
import { getTenantAccess } from "@/lib/api";

export default async function ConnectPage({ params }: { params: Promise<{ tenant: string }> }) {
  const { tenant: ref } = await params;
  const { tenant } = await getTenantAccess(ref);
  return (
    <main id="main">
      <div className="page-head">
        <div>
          <h1>Connect an agent</h1>
          <p>
            Every allowed tool of every enabled upstream, at <code>{tenant.gatewayUrl}</code>.
          </p>
        </div>
      </div>
      <section className="panel" aria-label="Setups">
        <ConnectSnippets slug={tenant.slug} url={tenant.gatewayUrl} />
      </section>
    </main>
  );
}
