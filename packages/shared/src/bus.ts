import { z } from "zod";

/** Channel names on the bus. Redis implementations prefix them with their key prefix. */
export const BusChannel = {
  /** `ConfigEvent`: a tenant's config changed (or the tenant was deleted). */
  config: "config",
  /** `CredentialEvent`: an upstream credential was refreshed or needs reconnecting. */
  credentials: "credentials",
} as const;
export type BusChannel = (typeof BusChannel)[keyof typeof BusChannel];

/** Published after commit by every write that changes what a gateway must know. */
export const ConfigEventSchema = z.object({
  tenantId: z.string(),
  version: z.number().int(),
  /** True when the tenant was deleted: nodes drop its snapshot and sessions. */
  deleted: z.boolean().optional(),
});
export type ConfigEvent = z.infer<typeof ConfigEventSchema>;

export type BusHandler = (message: unknown) => void;

/**
 * Publish/subscribe of small JSON messages between api, workers and gateway nodes. Delivery is
 * at-most-once: consumers must heal missed messages (gateways compare config versions on
 * `onReconnect`).
 */
export interface Bus {
  publish(channel: BusChannel, message: unknown): Promise<void>;
  /** Returns an unsubscribe function. */
  subscribe(channel: BusChannel, handler: BusHandler): Promise<() => Promise<void>>;
  /** Called after the connection comes back (never for the in-process bus). */
  onReconnect(handler: () => void): void;
  /** True while messages can flow. */
  readonly connected: boolean;
  close(): Promise<void>;
}

/** The embedded-mode bus: one process, synchronous fan-out on a microtask. */
export class InProcessBus implements Bus {
  private readonly handlers = new Map<BusChannel, Set<BusHandler>>();
  readonly connected = true;

  async publish(channel: BusChannel, message: unknown): Promise<void> {
    // Serialise like Redis would, so nobody comes to rely on shared object identity.
    const copy = JSON.parse(JSON.stringify(message)) as unknown;
    for (const handler of this.handlers.get(channel) ?? []) queueMicrotask(() => handler(copy));
  }

  async subscribe(channel: BusChannel, handler: BusHandler): Promise<() => Promise<void>> {
    let set = this.handlers.get(channel);
    if (!set) {
      set = new Set();
      this.handlers.set(channel, set);
    }
    set.add(handler);
    return async () => {
      set.delete(handler);
    };
  }

  onReconnect(_handler: () => void): void {}

  async close(): Promise<void> {
    this.handlers.clear();
  }
}
