import { ApiError, ok } from "@gatehouse/api-client";
import { type NextRequest, NextResponse } from "next/server";
import { anonymousApi } from "@/lib/api";
import { relayCookies } from "@/lib/cookies";
import { seeOther } from "@/lib/redirect";

// POST from the sign-in page: ask the API for the IdP's authorization URL (it sets the sealed flow
// cookie: state, nonce, PKCE verifier) and send the browser there.
export async function POST(request: NextRequest) {
  const returnTo = request.nextUrl.searchParams.get("returnTo") ?? undefined;
  try {
    const call = anonymousApi().POST("/v1/auth/oidc/start", { body: returnTo ? { returnTo } : {} });
    const { authorizationUrl } = await ok(call);
    await relayCookies((await call).response);
    return NextResponse.redirect(authorizationUrl, 303);
  } catch (err) {
    const message = err instanceof ApiError ? err.message : "The sign-in could not start";
    return seeOther(`/sign-in?error=${encodeURIComponent(message)}`);
  }
}
