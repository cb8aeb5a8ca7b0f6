import { ApiError, ok } from "@gatehouse/api-client";
import { OIDC_STATE_COOKIE } from "@gatehouse/shared";
import type { NextRequest } from "next/server";
import { anonymousApi } from "@/lib/api";
import { relayCookies } from "@/lib/cookies";
import { seeOther } from "@/lib/redirect";

// The IdP redirects here (CONSOLE_PUBLIC_URL/auth/callback). The API checks state, nonce and PKCE
// with the flow cookie, then starts the session; its cookies are relayed to the browser.
export async function GET(request: NextRequest) {
  const flow = request.cookies.get(OIDC_STATE_COOKIE)?.value;
  try {
    const call = anonymousApi(flow ? `${OIDC_STATE_COOKIE}=${flow}` : undefined).POST(
      "/v1/auth/oidc/callback",
      {
        body: { query: request.nextUrl.search },
      },
    );
    const signedIn = await ok(call);
    await relayCookies((await call).response);
    return seeOther(signedIn.returnTo ?? "/tenants");
  } catch (err) {
    const message = err instanceof ApiError ? err.message : "The sign-in failed";
    return seeOther(`/sign-in?error=${encodeURIComponent(message)}`);
  }
}
