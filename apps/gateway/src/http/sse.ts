import type { ServerResponse } from "node:http";

const KEEPALIVE_MS = 15_000;

function sseHeaders(extra: Record<string, string>): Record<string, string> {
  return {
    "content-type": "text/event-stream",
    "cache-control": "no-cache, no-transform",
    connection: "keep-alive",
    // Streamable HTTP: servers SHOULD send X-Accel-Buffering: no so proxies do not buffer events.
    "x-accel-buffering": "no",
    ...extra,
  };
}

/** How much an SSE stream may queue for a slow reader, and whom to tell when it gives up on one. */
export interface SseLimits {
  maxBufferedBytes: number;
  onDrop?(): void;
}

const DEFAULT_SSE_LIMITS: SseLimits = { maxBufferedBytes: 8 * 1024 * 1024 };

/** A long-lived SSE stream (the GET stream of a session, a listen stream, a request's stream). */
export class SseStream {
  private closed = false;
  private readonly keepalive: NodeJS.Timeout;
  private readonly closeHandlers: Array<() => void> = [];

  constructor(
    private readonly res: ServerResponse,
    headers: Record<string, string> = {},
    private readonly limits: SseLimits = DEFAULT_SSE_LIMITS,
  ) {
    res.writeHead(200, sseHeaders(headers));
    res.flushHeaders();
    // An SSE comment line keeps intermediaries from timing out a quiet stream.
    this.keepalive = setInterval(() => this.writeRaw(": keepalive\n\n"), KEEPALIVE_MS);
    this.keepalive.unref();
    res.on("close", () => this.markClosed());
  }

  get isClosed(): boolean {
    return this.closed;
  }

  onClose(fn: () => void): void {
    if (this.closed) fn();
    else this.closeHandlers.push(fn);
  }

  send(message: unknown): boolean {
    return this.writeRaw(`event: message\ndata: ${JSON.stringify(message)}\n\n`);
  }

  close(): void {
    if (this.closed) return;
    this.res.end();
    this.markClosed();
  }

  private writeRaw(chunk: string): boolean {
    if (this.closed || this.res.writableEnded) return false;
    // Backpressure: what the reader has not taken yet stays in this process. Past the bound the
    // stream is dropped (the connection closed: the client sees its stream end and may resume or
    // reconnect), so a slow or stalled reader cannot grow the node's memory.
    if (this.res.writableLength > this.limits.maxBufferedBytes) {
      this.drop();
      return false;
    }
    this.res.write(chunk);
    return true;
  }

  private drop(): void {
    if (this.closed) return;
    this.limits.onDrop?.();
    this.res.destroy();
    this.markClosed();
  }

  private markClosed(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.keepalive);
    for (const fn of this.closeHandlers.splice(0)) {
      try {
        fn();
      } catch {
        // a close handler must not take the node down
      }
    }
  }
}

/**
 * The answer to one POSTed JSON-RPC request (Streamable HTTP, "Sending Messages"): a single JSON
 * object when nothing else needs to go out first, switching to an SSE stream scoped to the request
 * as soon as a related notification or server-to-client request must be sent before the response.
 */
export class ResponseChannel {
  private stream: SseStream | null = null;
  private finished = false;
  private readonly closeHandlers: Array<() => void> = [];
  private clientGone = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly acceptsSse: boolean,
    private readonly headers: Record<string, string>,
    /** Answer as SSE whenever the client accepts it, even when nothing precedes the response. */
    private readonly preferSse = false,
    private readonly limits: SseLimits = DEFAULT_SSE_LIMITS,
  ) {
    res.on("close", () => {
      if (!res.writableFinished) {
        this.clientGone = true;
        for (const fn of this.closeHandlers.splice(0)) fn();
      }
    });
  }

  /** True when intermediate messages can reach the client (SSE accepted, not finished, still connected). */
  get canStream(): boolean {
    return this.acceptsSse && !this.finished && !this.clientGone;
  }

  get isOpen(): boolean {
    return !this.finished && !this.clientGone;
  }

  /** Called when the client disconnects before the final response. */
  onClientGone(fn: () => void): void {
    if (this.clientGone) fn();
    else this.closeHandlers.push(fn);
  }

  /** Sends a request-related message before the final response; false when it could not. */
  send(message: unknown): boolean {
    if (!this.canStream) return false;
    if (!this.stream) this.stream = new SseStream(this.res, this.headers, this.limits);
    return this.stream.send(message);
  }

  /** The final JSON-RPC response; ends the HTTP response. */
  finish(message: unknown, status = 200): void {
    if (this.finished) return;
    this.finished = true;
    if (this.clientGone) return;
    if (!this.stream && this.preferSse && this.acceptsSse && !this.res.headersSent) {
      // The answer alone on an SSE stream: headers and the one event in a single write.
      const payload = `event: message\ndata: ${JSON.stringify(message)}\n\n`;
      this.res.writeHead(status, {
        ...sseHeaders(this.headers),
        "content-length": Buffer.byteLength(payload),
      });
      this.res.end(payload);
      return;
    }
    if (this.stream) {
      this.stream.send(message);
      this.stream.close();
      return;
    }
    if (this.res.destroyed) return;
    if (this.res.headersSent) {
      this.res.end();
      return;
    }
    const payload = JSON.stringify(message);
    this.res.writeHead(status, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(payload),
      ...this.headers,
    });
    this.res.end(payload);
  }
}
