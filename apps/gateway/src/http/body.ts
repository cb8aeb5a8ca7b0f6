import type { IncomingMessage } from "node:http";
import { AppError, ErrorCode } from "@gatehouse/shared";

/**
 * Reads the request body once, up to `limit` bytes. Over the limit: PAYLOAD_TOO_LARGE, decided from
 * Content-Length before reading when the client declares it.
 */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = req.headers["content-length"];
  if (declared !== undefined) {
    const n = Number(declared);
    if (Number.isFinite(n) && n > limit) {
      req.resume();
      throw tooLarge(limit);
    }
  }
  return await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (err: Error | null, value?: Buffer) => {
      if (done) return;
      done = true;
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("aborted", onAborted);
      if (err) reject(err);
      else resolve(value as Buffer);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        // Stop buffering but drain, so the 413 can still be written on this connection.
        chunks.length = 0;
        req.resume();
        finish(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => finish(null, Buffer.concat(chunks, size));
    const onError = (err: Error) => finish(err);
    const onAborted = () => finish(new Error("request aborted"));
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
    req.on("aborted", onAborted);
  });
}

function tooLarge(limit: number): AppError {
  return new AppError(
    ErrorCode.PAYLOAD_TOO_LARGE,
    `The request body is larger than the gateway's limit of ${limit} bytes; send a smaller message.`,
    { limitBytes: limit },
  );
}

/** Parses JSON; PARSE_ERROR with a usable message when it does not parse. */
export function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString("utf8")) as unknown;
  } catch (err) {
    throw new AppError(
      ErrorCode.PARSE_ERROR,
      `The request body is not valid JSON (${(err as Error).message}); send one JSON-RPC message.`,
    );
  }
}
