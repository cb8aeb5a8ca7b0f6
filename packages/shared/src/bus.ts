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

const credentialRef = {
  tenantId: z.string(),
  upstreamId: z.string(),
  /** `""` for a shared credential, else the principal id (`key:<id>`, `sub:<subject>`). */
  subject: z.string(),
};

/**
 * Upstream credential changes (channel `credentials`). Tokens never travel on the bus: a node
 * that sees `updated` re-reads the sealed row. `refresh_requested` goes the other way, from a
 * gateway whose upstream answered 401 (or whose token expired) to the workers.
 */
export const CredentialEventSchema = z.discriminatedUnion("type", [
  /** New tokens were stored (refresh, connect, first client-credentials token). */
  z.object({
    type: z.literal("updated"),
    ...credentialRef,
    credentialId: z.string(),
    generation: z.number().int(),
    expiresAt: z.string().nullable(),
  }),
  /** A permanent failure (e.g. `invalid_grant`): a person must reconnect. */
  z.object({
    type: z.literal("needs_reconnect"),
    ...credentialRef,
    credentialId: z.string(),
    reason: z.string(),
  }),
  /** A refresh failed for now and will be retried; the old token may still work until it expires. */
  z.object({ type: z.literal("failed"), ...credentialRef, credentialId: z.string(), reason: z.string() }),
  /** The credential was disconnected. */
  z.object({ type: z.literal("deleted"), ...credentialRef, credentialId: z.string() }),
  /** Please get a fresh token now; `staleGeneration` is the one that failed (null: none held). */
  z.object({
    type: z.literal("refresh_requested"),
    ...credentialRef,
    staleGeneration: z.number().int().nullable(),
  }),
]);
export type CredentialEvent = z.infer<typeof CredentialEventSchema>;

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
