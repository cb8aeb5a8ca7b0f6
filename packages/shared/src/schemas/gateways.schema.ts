import { z } from "zod";

/** `GET /v1/gateways` takes no parameters: it always lists every live node. */
export const GatewaysQuerySchema = z.strictObject({});

/** A live gateway node as `GET /v1/gateways` shows it. */
export const GatewayNodeViewSchema = z.object({
  id: z.string(),
  version: z.string(),
  startedAt: z.string(),
  lastHeartbeatAt: z.string(),
  /** `{tenantId: configVersion}` of the tenant snapshots the node has applied. */
  configVersions: z.record(z.string(), z.number().int()),
});
export type GatewayNodeView = z.infer<typeof GatewayNodeViewSchema>;
