import { ActionForm, SubmitButton } from "@/components/action-form";
import { Simulator } from "@/components/simulator";
import { api, getTenantAccess, load } from "@/lib/api";
import { savePolicy, simulate } from "./actions";

export default async function PolicyPage({ params }: { params: Promise<{ tenant: string }> }) {
  const { tenant: ref } = await params;
  const { tenant, canWrite } = await getTenantAccess(ref);
  const policy = await load(
    (await api()).GET("/v1/tenants/{tenant}/policy", { params: { path: { tenant: tenant.slug } } }),
  );
  const json = JSON.stringify(policy.document, null, 2);
  return (
    <main id="main">
      <div className="page-head">
        <div>
          <h1>Policy</h1>
          <p>
            Version {policy.version}
            {policy.createdAt
              ? `, saved ${policy.createdAt.slice(0, 16).replace("T", " ")}`
              : " (the default: deny everything)"}
            {policy.createdBy ? ` by ${policy.createdBy}` : ""}. A matching deny always wins.
          </p>
        </div>
      </div>
      <div className="grid-2">
        <section className="panel" aria-labelledby="doc-heading">
          <h2 id="doc-heading">Document</h2>
          {canWrite ? (
            <ActionForm action={savePolicy.bind(null, tenant.slug)} label="Policy document">
              <input type="hidden" name="version" value={policy.version} />
              <div className="field">
                <label htmlFor="policy-json">Policy JSON</label>
                <textarea
                  id="policy-json"
                  name="document"
                  className="code"
                  defaultValue={json}
                  spellCheck={false}
                />
                <span className="hint">
                  Rules: <code>id</code>, <code>effect</code>, <code>principals</code>, <code>upstreams</code>
                  , <code>tools</code> (globs), optional CEL <code>when</code>. Saving checks every rule.
                </span>
              </div>
              <div>
                <SubmitButton>Save policy</SubmitButton>
              </div>
            </ActionForm>
          ) : (
            <pre>
              <code>{json}</code>
            </pre>
          )}
        </section>
        <section className="panel" aria-labelledby="sim-heading">
          <h2 id="sim-heading">Simulator</h2>
          <p className="muted">What would the saved policy decide for this call, and why?</p>
          <Simulator action={simulate.bind(null, tenant.slug)} />
        </section>
      </div>
    </main>
  );
}
