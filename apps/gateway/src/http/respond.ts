import type { IncomingMessage, ServerResponse } from "node:http";
import { AppError, type ErrorCode } from "@gatehouse/shared";

export type JsonRpcId = string | number | null;

export interface JsonRpcErrorObject {
  code: number;
  message: string;
  data?: unknown;
}

/** Writes a JSON body with a status, unless the response is already under way. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    if (!res.writableEnded) res.end();
    return;
  }
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(payload),
    ...headers,
  });
  res.end(payload);
}

export function sendEmpty(res: ServerResponse, status: number, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    if (!res.writableEnded) res.end();
    return;
  }
  res.writeHead(status, headers);
  res.end();
}

export function jsonRpcError(id: JsonRpcId, error: JsonRpcErrorObject): Record<string, unknown> {
  return { jsonrpc: "2.0", id, error };
}

export function appError(code: ErrorCode, message: string, details?: Record<string, unknown>): AppError {
  return new AppError(code, message, details);
}

/**
 * Answers an HTTP-level failure as the MCP transport expects (Streamable HTTP: an HTTP error
 * status whose body MAY be a JSON-RPC error response without id): status from the catalogue,
 * body a JSON-RPC error with `data.code`.
 */
export function sendAppError(
  res: ServerResponse,
  err: AppError,
  id: JsonRpcId = null,
  headers: Record<string, string> = {},
  status = err.httpStatus,
): void {
  sendJson(res, status, jsonRpcError(id, err.toJsonRpcError()), headers);
}

/** Client address for logs. */
export function remoteAddress(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? "";
}
