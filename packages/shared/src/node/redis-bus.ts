import { Redis, type RedisOptions } from "ioredis";
import type { Bus, BusChannel, BusHandler } from "../bus.js";

/** The slice of a logger the bus needs; pino and `console` both fit. */
export interface BusLogger {
  warn(obj: Record<string, unknown>, msg: string): void;
  info(obj: Record<string, unknown>, msg: string): void;
}

export interface RedisBusOptions {
  /** `redis://…` or `rediss://…`. */
  url: string;
  /** Prepended to every channel name so that deployments sharing a Redis stay apart. Default `gatehouse:`. */
  keyPrefix?: string;
  logger?: BusLogger;
  /** Redis `CLIENT SETNAME` base; the connections are named `<name>-pub` and `<name>-sub`. Default `gatehouse-bus`. */
  connectionName?: string;
}

const defaultLogger: BusLogger = {
  warn: (obj, msg) => console.warn(msg, obj),
  info: () => {},
};

// Reconnect fast: config changes must reach every node within a second once Redis is back.
const retryStrategy = (times: number): number => Math.min(50 * 2 ** Math.min(times, 6), 2000);
const PUBLISH_TIMEOUT_MS = 5000;
const QUIT_TIMEOUT_MS = 2000;

// `disconnectTimeout` (untyped in ioredis 6, default 2000 ms) is how long a timer waits for a socket
// to close after `disconnect()`; on a socket that is already gone (while reconnecting) that timer
// is left running, which would keep the process alive that long after `close()`.
const common = { retryStrategy, disconnectTimeout: 200 } as RedisOptions;

/**
 * The distributed bus: Redis pub/sub with one connection to publish and one to subscribe (a
 * subscribed Redis connection can do nothing else). Channels carry JSON. After the subscriber
 * reconnects it subscribes again and only then calls the `onReconnect` handlers, so a consumer
 * that re-checks state there cannot miss a message published after its check.
 */
export class RedisBus implements Bus {
  private readonly pub: Redis;
  private readonly sub: Redis;
  private readonly prefix: string;
  private readonly logger: BusLogger;
  private readonly handlers = new Map<BusChannel, Set<BusHandler>>();
  private readonly reconnectHandlers = new Set<() => void>();
  /** Callers of `subscribe` waiting for the subscriber to come up; rejected by `close`. */
  private readonly liveWaiters = new Set<{ resolve: () => void; reject: (err: Error) => void }>();
  /** Publishes in flight; rejected by `close` (ioredis would leave them pending forever). */
  private readonly pendingPublishes = new Set<(err: Error) => void>();
  private everReady = false;
  private live = false;
  private outage = false;
  private closed = false;

  constructor(options: RedisBusOptions) {
    this.prefix = options.keyPrefix ?? "gatehouse:";
    this.logger = options.logger ?? defaultLogger;
    const name = options.connectionName ?? "gatehouse-bus";
    this.pub = new Redis(options.url, {
      ...common,
      connectionName: `${name}-pub`,
      // A publish waits through a short blip, but fails soon when Redis stays away.
      maxRetriesPerRequest: 2,
    });
    this.sub = new Redis(options.url, {
      ...common,
      connectionName: `${name}-sub`,
      // We (re)subscribe ourselves, on "ready", so that `onReconnect` runs after the
      // subscriptions are back; nothing is ever queued on this connection.
      autoResubscribe: false,
      enableOfflineQueue: false,
    });
    this.pub.on("error", (err: Error) => this.logger.warn({ err: err.message }, "Redis bus publisher error"));
    this.sub.on("error", (err: Error) => {
      if (this.outage) return;
      this.outage = true;
      this.logger.warn({ err: err.message }, "Redis bus subscriber lost its connection; reconnecting");
    });
    this.sub.on("close", () => {
      this.live = false;
    });
    this.sub.on("ready", () => {
      void this.onSubscriberReady();
    });
    this.sub.on("message", (channel: string, raw: string) => this.dispatch(channel, raw));
  }

  /** True while the subscriber is connected and subscribed. */
  get connected(): boolean {
    return this.live && !this.closed;
  }

  async publish(channel: BusChannel, message: unknown): Promise<void> {
    if (this.closed) throw new Error("The bus is closed");
    const json = JSON.stringify(message);
    if (json === undefined) throw new Error("Bus messages must be JSON-serialisable");
    // Our own timeout rather than ioredis' `commandTimeout`, whose timer outlives `close()`.
    await new Promise<void>((resolve, reject) => {
      const settle = (err?: unknown) => {
        clearTimeout(timer);
        this.pendingPublishes.delete(fail);
        if (err === undefined) resolve();
        else reject(err);
      };
      const fail = (err: Error) => settle(err);
      const timer = setTimeout(
        () => fail(new Error(`Redis bus publish timed out after ${PUBLISH_TIMEOUT_MS} ms`)),
        PUBLISH_TIMEOUT_MS,
      );
      this.pendingPublishes.add(fail);
      this.pub.publish(this.prefix + channel, json).then(() => settle(), settle);
    });
  }

  async subscribe(channel: BusChannel, handler: BusHandler): Promise<() => Promise<void>> {
    if (this.closed) throw new Error("The bus is closed");
    let set = this.handlers.get(channel);
    const first = !set;
    if (!set) {
      set = new Set();
      this.handlers.set(channel, set);
    }
    set.add(handler);
    try {
      // When not connected, the next "ready" subscribes every channel in `handlers`, this one included.
      if (first && this.sub.status === "ready") await this.sub.subscribe(this.prefix + channel);
      if (!this.live) await this.waitLive();
    } catch (err) {
      set.delete(handler);
      if (set.size === 0) this.handlers.delete(channel);
      throw err;
    }
    let done = false;
    return async () => {
      if (done) return;
      done = true;
      const current = this.handlers.get(channel);
      if (!current) return;
      current.delete(handler);
      if (current.size > 0) return;
      this.handlers.delete(channel);
      if (this.closed || this.sub.status !== "ready") return; // a reconnect will not resubscribe it
      await this.sub.unsubscribe(this.prefix + channel).catch((err: Error) => {
        this.logger.warn({ err: err.message, channel }, "Redis bus could not unsubscribe");
      });
    };
  }

  onReconnect(handler: () => void): void {
    this.reconnectHandlers.add(handler);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.live = false;
    this.handlers.clear();
    this.reconnectHandlers.clear();
    const closed = new Error("The bus was closed");
    for (const w of this.liveWaiters) w.reject(closed);
    this.liveWaiters.clear();
    for (const reject of this.pendingPublishes)
      reject(new Error("The bus was closed before the message was sent"));
    this.pendingPublishes.clear();
    await Promise.all([shutdown(this.pub), shutdown(this.sub)]);
  }

  private waitLive(): Promise<void> {
    return new Promise((resolve, reject) => this.liveWaiters.add({ resolve, reject }));
  }

  private async onSubscriberReady(): Promise<void> {
    const reconnect = this.everReady;
    this.everReady = true;
    const channels = [...this.handlers.keys()].map((c) => this.prefix + c);
    try {
      if (channels.length > 0) await this.sub.subscribe(...channels);
    } catch (err) {
      // The connection dropped again; the next "ready" tries again.
      this.logger.warn({ err: (err as Error).message }, "Redis bus could not resubscribe");
      return;
    }
    if (this.closed) return;
    this.live = true;
    this.outage = false;
    for (const w of this.liveWaiters) w.resolve();
    this.liveWaiters.clear();
    if (!reconnect) return;
    this.logger.info({ channels: channels.length }, "Redis bus reconnected");
    for (const handler of this.reconnectHandlers) {
      try {
        handler();
      } catch (err) {
        this.logger.warn({ err: (err as Error).message }, "Redis bus reconnect handler failed");
      }
    }
  }

  private dispatch(prefixed: string, raw: string): void {
    if (!prefixed.startsWith(this.prefix)) return;
    const handlers = this.handlers.get(prefixed.slice(this.prefix.length) as BusChannel);
    if (!handlers || handlers.size === 0) return;
    let message: unknown;
    try {
      message = JSON.parse(raw);
    } catch {
      this.logger.warn(
        { channel: prefixed, bytes: raw.length },
        "Redis bus dropped a message that is not JSON",
      );
      return;
    }
    for (const handler of handlers) {
      try {
        const result = handler(message) as unknown;
        if (result instanceof Promise) {
          result.catch((err: unknown) =>
            this.logger.warn({ err: String(err), channel: prefixed }, "Redis bus handler failed"),
          );
        }
      } catch (err) {
        this.logger.warn({ err: (err as Error).message, channel: prefixed }, "Redis bus handler failed");
      }
    }
  }
}

/**
 * QUIT when connected (flushes pending publishes), otherwise drop the socket and stop reconnecting.
 * (While "reconnecting", ioredis 6 `disconnect()` cancels the retry timer but leaves the status and
 * any queued commands as they are; nothing stays open, and `close` has already settled our promises.)
 */
async function shutdown(client: Redis): Promise<void> {
  if (client.status === "end") return;
  if (client.status !== "ready") {
    client.disconnect();
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), QUIT_TIMEOUT_MS);
  });
  // Resolve only once the socket is closed, so that nothing is left open when `close()` returns.
  const ended = new Promise<"ended">((resolve) => client.once("end", () => resolve("ended")));
  const quit = client.quit().then(
    () => ended,
    () => "failed" as const,
  );
  const result = await Promise.race([quit, timeout]);
  clearTimeout(timer);
  if (result !== "ended") client.disconnect();
}
