/**
 * The one catalogue of error codes that go over the wire (REST problem bodies and JSON-RPC
 * `error.data.code`). Internal failures are plain `Error`s and are mapped to one of these at
 * the edge, never shown raw.
 */
export const ErrorCode = {
  /** Body, query or path failed validation; `details` names each bad field. */
  VALIDATION_FAILED: "VALIDATION_FAILED",
  /** No credentials, or credentials that are unknown, expired or revoked. */
  UNAUTHENTICATED: "UNAUTHENTICATED",
  /** Authenticated, but not allowed to touch this resource. */
  FORBIDDEN: "FORBIDDEN",
  /** The resource does not exist (or belongs to another tenant). */
  NOT_FOUND: "NOT_FOUND",
  /** A unique name or slug is taken. */
  CONFLICT: "CONFLICT",
  /** Well-formed but semantically impossible (e.g. an upstream with no URL). */
  UNPROCESSABLE: "UNPROCESSABLE",
  /** The tenant policy denied this call; `data.ruleId` names the deciding rule. */
  DENIED_BY_POLICY: "DENIED_BY_POLICY",
  /** No tool (resource, prompt) of that name is visible to the caller. */
  TOOL_NOT_FOUND: "TOOL_NOT_FOUND",
  /** The upstream cannot be reached or its circuit is open. */
  UPSTREAM_UNAVAILABLE: "UPSTREAM_UNAVAILABLE",
  /** The upstream answered with an error. */
  UPSTREAM_ERROR: "UPSTREAM_ERROR",
  /** The upstream needs a person to (re)connect an account; `data.connectUrl` says where. */
  UPSTREAM_AUTH_REQUIRED: "UPSTREAM_AUTH_REQUIRED",
  /** Over a rate limit; `data.retryAfterMs` says when to retry. */
  RATE_LIMITED: "RATE_LIMITED",
  /** The upstream did not answer in time. */
  TIMEOUT: "TIMEOUT",
  /** Malformed JSON-RPC or MCP request. */
  INVALID_REQUEST: "INVALID_REQUEST",
  /** JSON that does not parse. */
  PARSE_ERROR: "PARSE_ERROR",
  /** Unknown JSON-RPC method. */
  METHOD_NOT_FOUND: "METHOD_NOT_FOUND",
  /** The request body is over the size limit. */
  PAYLOAD_TOO_LARGE: "PAYLOAD_TOO_LARGE",
  /** A request body that is not sent as `Content-Type: application/json`. */
  UNSUPPORTED_MEDIA_TYPE: "UNSUPPORTED_MEDIA_TYPE",
  /** The MCP session is unknown, expired, or belongs to another principal. */
  SESSION_NOT_FOUND: "SESSION_NOT_FOUND",
  /** A dependency (database, Redis) is down; retry later. */
  SERVICE_UNAVAILABLE: "SERVICE_UNAVAILABLE",
  /** A bug; the log has the details under the request id. */
  INTERNAL: "INTERNAL",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** JSON-RPC 2.0 error codes (spec section 5.1) plus the implementation-defined range. */
export const JsonRpcCode = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL_ERROR: -32603,
  /** Implementation-defined server errors: -32000 to -32099. */
  SERVER_ERROR: -32000,
} as const;

interface ErrorSpec {
  http: number;
  jsonRpc: number;
}

const specs: Record<ErrorCode, ErrorSpec> = {
  VALIDATION_FAILED: { http: 400, jsonRpc: JsonRpcCode.INVALID_PARAMS },
  UNAUTHENTICATED: { http: 401, jsonRpc: -32001 },
  FORBIDDEN: { http: 403, jsonRpc: -32003 },
  NOT_FOUND: { http: 404, jsonRpc: -32004 },
  CONFLICT: { http: 409, jsonRpc: -32009 },
  UNPROCESSABLE: { http: 422, jsonRpc: JsonRpcCode.INVALID_PARAMS },
  DENIED_BY_POLICY: { http: 403, jsonRpc: -32003 },
  TOOL_NOT_FOUND: { http: 404, jsonRpc: JsonRpcCode.INVALID_PARAMS },
  UPSTREAM_UNAVAILABLE: { http: 503, jsonRpc: -32010 },
  UPSTREAM_ERROR: { http: 502, jsonRpc: -32011 },
  UPSTREAM_AUTH_REQUIRED: { http: 401, jsonRpc: -32012 },
  RATE_LIMITED: { http: 429, jsonRpc: -32029 },
  TIMEOUT: { http: 504, jsonRpc: -32008 },
  INVALID_REQUEST: { http: 400, jsonRpc: JsonRpcCode.INVALID_REQUEST },
  PARSE_ERROR: { http: 400, jsonRpc: JsonRpcCode.PARSE_ERROR },
  METHOD_NOT_FOUND: { http: 404, jsonRpc: JsonRpcCode.METHOD_NOT_FOUND },
  PAYLOAD_TOO_LARGE: { http: 413, jsonRpc: JsonRpcCode.INVALID_REQUEST },
  UNSUPPORTED_MEDIA_TYPE: { http: 415, jsonRpc: JsonRpcCode.INVALID_REQUEST },
  SESSION_NOT_FOUND: { http: 404, jsonRpc: -32001 },
  SERVICE_UNAVAILABLE: { http: 503, jsonRpc: JsonRpcCode.SERVER_ERROR },
  INTERNAL: { http: 500, jsonRpc: JsonRpcCode.INTERNAL_ERROR },
};

/** HTTP status for an error code. */
export function httpStatusOf(code: ErrorCode): number {
  return specs[code].http;
}

/** JSON-RPC `error.code` for an error code. */
export function jsonRpcCodeOf(code: ErrorCode): number {
  return specs[code].jsonRpc;
}

/** An error meant for the caller: a stable code, a message a person can act on, optional details. */
export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = "AppError";
  }

  get httpStatus(): number {
    return httpStatusOf(this.code);
  }

  /** REST body: `{"error": {"code", "message", "details"}}` (api.md). */
  toProblem(): { error: { code: ErrorCode; message: string; details?: unknown } } {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.details === undefined ? {} : { details: this.details }),
      },
    };
  }

  /** JSON-RPC error object; `data.code` is the catalogue code, other details are merged into `data`. */
  toJsonRpcError(): { code: number; message: string; data: Record<string, unknown> } {
    const extra =
      this.details && typeof this.details === "object" ? (this.details as Record<string, unknown>) : {};
    return { code: jsonRpcCodeOf(this.code), message: this.message, data: { ...extra, code: this.code } };
  }
}
