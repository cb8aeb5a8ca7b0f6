import * as oidc from "openid-client";

/** Error codes after which retrying the same grant cannot succeed (RFC 6749 section 5.2). */
const PERMANENT = new Set([
  "invalid_grant",
  "invalid_client",
  "unauthorized_client",
  "unsupported_grant_type",
]);

export interface OAuthFailure {
  /** Retrying cannot help: a person (or an admin) must act. */
  permanent: boolean;
  /** The OAuth error code, when the server sent one. */
  code: string | null;
  /** Safe to show and store: never contains a token or secret. */
  message: string;
}

/** Classifies what openid-client threw at a token request. */
export function describeOAuthError(error: unknown): OAuthFailure {
  if (error instanceof oidc.ResponseBodyError) {
    return failure(error.error, error.error_description, error.status);
  }
  if (error instanceof oidc.WWWAuthenticateChallengeError) {
    const params = error.cause[0]?.parameters;
    return failure(params?.error ?? "invalid_client", params?.error_description, error.status);
  }
  if (error instanceof oidc.AuthorizationResponseError) {
    return failure(error.error, error.error_description, 400);
  }
  if (error instanceof oidc.ClientError) {
    return { permanent: false, code: null, message: `OAuth client error: ${error.message}` };
  }
  const message = error instanceof Error ? error.message : String(error);
  const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : "";
  return {
    permanent: false,
    code: null,
    message: `Authorization server unreachable or failing (${message}${cause})`,
  };
}

function failure(code: string, description: string | undefined, status: number): OAuthFailure {
  const detail = description ? `: ${description}` : "";
  return {
    permanent: PERMANENT.has(code),
    code,
    message: `${code}${detail} (HTTP ${status} from the authorization server)`,
  };
}
