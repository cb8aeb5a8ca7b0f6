import { AppError, ErrorCode } from "@gatehouse/shared";

/**
 * Malformed params of a well-formed request: `data.code` INVALID_REQUEST from the catalogue, JSON-RPC
 * code -32602 (Invalid params, JSON-RPC 2.0 section 5.1; MCP pagination "Error Handling" for cursors).
 */
export function invalidParams(message: string, details?: Record<string, unknown>): AppError {
  const e = new AppError(ErrorCode.INVALID_REQUEST, message, details);
  (e as AppError & { jsonRpcCode?: number }).jsonRpcCode = -32602;
  return e;
}

/** Protocol revisions served downstream. */
export const LEGACY_VERSIONS = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"] as const;
export const MODERN_VERSIONS = ["2026-07-28"] as const;
export const LATEST_LEGACY_VERSION = "2025-11-25";
/** Streamable HTTP (2025-06-18+): a request without MCP-Protocol-Version is taken as 2025-03-26. */
export const DEFAULT_HEADERLESS_VERSION = "2025-03-26";

export const META_PROTOCOL_VERSION = "io.modelcontextprotocol/protocolVersion";
export const META_CLIENT_CAPABILITIES = "io.modelcontextprotocol/clientCapabilities";
export const META_CLIENT_INFO = "io.modelcontextprotocol/clientInfo";
export const META_SERVER_INFO = "io.modelcontextprotocol/serverInfo";
export const META_LOG_LEVEL = "io.modelcontextprotocol/logLevel";
export const META_SUBSCRIPTION_ID = "io.modelcontextprotocol/subscriptionId";

/** 2026-07-28 error codes ("Error Codes" in basic/index, "Server Validation" in the HTTP transport). */
export const HEADER_MISMATCH = -32020;
export const UNSUPPORTED_PROTOCOL_VERSION = -32022;

export const GATEWAY_SERVER_INFO = { name: "gatehouse", title: "Gatehouse MCP gateway", version: "0.1.0" };

export function isLegacyVersion(v: string): boolean {
  return (LEGACY_VERSIONS as readonly string[]).includes(v);
}

export function isModernVersion(v: string): boolean {
  return (MODERN_VERSIONS as readonly string[]).includes(v);
}

/** True for a date-shaped revision of the 2026-07-28 era or later (supported or not). */
export function looksModern(v: string): boolean {
  return /^\d{4}-\d{2}-\d{2}$/.test(v) && v >= "2026-07-28";
}

export function isModernMetaKey(k: string): boolean {
  return k.startsWith("io.modelcontextprotocol/") && k !== "io.modelcontextprotocol/related-task";
}

/** What the gateway offers downstream: the union of what it can relay. */
export function gatewayCapabilities(): Record<string, unknown> {
  return {
    tools: { listChanged: true },
    prompts: { listChanged: true },
    resources: { listChanged: true, subscribe: true },
    completions: {},
    logging: {},
  };
}

/**
 * Decodes a 2026-07-28 header value that may use the Base64 sentinel (`=?base64?…?=`, Streamable
 * HTTP "Value Encoding"); null when the encoding is malformed.
 */
export function decodeHeaderValue(v: string): string | null {
  if (v.startsWith("=?base64?") && v.endsWith("?=")) {
    const inner = v.slice("=?base64?".length, -2);
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(inner)) return null;
    return Buffer.from(inner, "base64").toString("utf8");
  }
  return v;
}
