import { AppError, ErrorCode } from "@gatehouse/shared";

const DISCOVERY_TIMEOUT_MS = 5000;

/**
 * The JWKS URI of an OpenID provider, from `${issuer}/.well-known/openid-configuration`
 * (OpenID Connect Discovery 1.0, section 4). The document's `issuer` must equal the issuer asked
 * for (section 4.3), or tokens would later fail verification. Any failure is a 422 saying what to fix.
 */
export async function discoverJwksUri(issuer: string): Promise<string> {
  const base = issuer.replace(/\/+$/, "");
  const url = `${base}/.well-known/openid-configuration`;
  const fail = (why: string) =>
    new AppError(
      ErrorCode.UNPROCESSABLE,
      `Could not discover the JWKS URI from ${url}: ${why}. Check the issuer, or send jwksUri explicitly.`,
      [{ path: "issuer", message: why }],
    );

  let response: Response;
  try {
    response = await fetch(url, {
      headers: { accept: "application/json" },
      signal: AbortSignal.timeout(DISCOVERY_TIMEOUT_MS),
    });
  } catch (err) {
    const reason =
      err instanceof Error && err.name === "TimeoutError"
        ? "no answer within 5 s"
        : "the issuer is unreachable";
    throw fail(reason);
  }
  if (!response.ok) throw fail(`HTTP ${response.status}`);

  let metadata: { issuer?: unknown; jwks_uri?: unknown };
  try {
    metadata = (await response.json()) as typeof metadata;
  } catch {
    throw fail("the answer is not JSON");
  }
  if (typeof metadata.issuer !== "string" || metadata.issuer.replace(/\/+$/, "") !== base) {
    throw fail(`the document names issuer ${JSON.stringify(metadata.issuer)}, not ${issuer}`);
  }
  if (typeof metadata.jwks_uri !== "string" || !/^https?:\/\//.test(metadata.jwks_uri)) {
    throw fail("the document has no http(s) jwks_uri");
  }
  return metadata.jwks_uri;
}
