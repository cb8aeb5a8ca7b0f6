import type { PrismaClient } from "./generated/prisma/client.js";

/**
 * Reads of the `GatewayNode` table that both the data plane (which writes its own row) and the
 * control plane (`GET /v1/gateways`) need. It lives here so the API never imports the gateway.
 */
export type GatewayNodeDb = Pick<PrismaClient, "gatewayNode">;

/** A gateway node as `GET /v1/gateways` shows it. */
export interface GatewayNodeInfo {
  id: string;
  version: string;
  startedAt: Date;
  lastHeartbeatAt: Date;
  configVersions: Record<string, number>;
}

/** A node that missed three 5-second heartbeats is no longer live. */
export const NODE_STALE_AFTER_MS = 15_000;

/** Nodes that heartbeated within `staleAfterMs`, newest first. */
export async function listLiveNodes(
  prisma: GatewayNodeDb,
  staleAfterMs = NODE_STALE_AFTER_MS,
): Promise<GatewayNodeInfo[]> {
  const rows = await prisma.gatewayNode.findMany({
    where: { lastHeartbeatAt: { gte: new Date(Date.now() - staleAfterMs) } },
    orderBy: [{ startedAt: "desc" }, { id: "asc" }],
  });
  return rows.map((r) => ({
    id: r.id,
    version: r.version,
    startedAt: r.startedAt,
    lastHeartbeatAt: r.lastHeartbeatAt,
    configVersions: toVersions(r.configVersions),
  }));
}

/** Deletes rows of nodes silent for longer than `olderThanMs` (crashed nodes); returns how many. */
export async function pruneDeadNodes(prisma: GatewayNodeDb, olderThanMs = 24 * 3600_000): Promise<number> {
  const { count } = await prisma.gatewayNode.deleteMany({
    where: { lastHeartbeatAt: { lt: new Date(Date.now() - olderThanMs) } },
  });
  return count;
}

function toVersions(value: unknown): Record<string, number> {
  if (!value || typeof value !== "object" || Array.isArray(value)) return {};
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(value)) if (typeof v === "number") out[k] = v;
  return out;
}
