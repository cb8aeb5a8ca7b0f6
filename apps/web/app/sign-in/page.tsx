import { ActionForm, SubmitButton } from "@/components/action-form";
import { anonymousApi, ok } from "@/lib/api";
import { signInWithToken } from "./actions";

export const dynamic = "force-dynamic";

export default async function SignInPage({
  searchParams,
}: {
  searchParams: Promise<{ expired?: string; error?: string }>;
}) {
  const { expired, error } = await searchParams;
  const providers = await ok(anonymousApi().GET("/v1/auth/providers"));
  return (
    <main id="main" className="center-card">
      <div className="panel">
        <h1>Sign in to Gatehouse</h1>
        <p className="muted">The console of your MCP gateway.</p>
        {expired ? (
          <p role="status" className="alert error">
            Your session has ended. Sign in again.
          </p>
        ) : null}
        {error ? (
          <p role="alert" className="alert error">
            {error}
          </p>
        ) : null}
        {providers.oidc.enabled ? (
          <form action="/auth/start" method="post" className="form">
            <button type="submit" className="button primary">
              Sign in with your identity provider
            </button>
            <p className="muted">{providers.oidc.issuer}</p>
          </form>
        ) : null}
        {providers.bootstrap ? (
          <>
            {providers.oidc.enabled ? <hr /> : null}
            <ActionForm action={signInWithToken} label="Sign in with the admin token">
              <div className="field">
                <label htmlFor="token">Admin token</label>
                <input id="token" name="token" type="password" autoComplete="off" required />
                <span className="hint">
                  Printed by <code>npm start</code> on first start (also in <code>.data/secrets.json</code>).
                  Signs you in as platform admin.
                </span>
              </div>
              <SubmitButton>Sign in</SubmitButton>
            </ActionForm>
          </>
        ) : null}
        {!providers.oidc.enabled && !providers.bootstrap ? (
          <p role="alert" className="alert error">
            No sign-in method is configured. Set CONSOLE_OIDC_ISSUER, CONSOLE_OIDC_CLIENT_ID and
            CONSOLE_OIDC_CLIENT_SECRET on the API.
          </p>
        ) : null}
      </div>
    </main>
  );
}
