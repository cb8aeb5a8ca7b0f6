import type { PrismaClient } from "@gatehouse/db";
import type { Logger } from "pino";
import type { TenantState } from "../tenancy/tenant-state.js";
import type { UpstreamManager } from "./upstream-manager.js";

/**
 * The workers' tool discovery (issue 5) stores each upstream's catalog and bumps the tenant's
 * config version when it changed. The snapshot does not carry catalogs, so a reload alone would
 * keep serving the cached one: after each (re)load this compares the upstreams' discovery stamps
 * with the last ones seen (one small query, off the request path) and refetches the catalogs of
 * those that were rediscovered; sessions whose visible list changed then get list_changed.
 */
export class DiscoveredTools {
  /** upstream id → `toolsDiscoveredAt` (epoch ms, or null) when last seen. */
  private readonly seen = new Map<string, number | null>();

  constructor(
    private readonly prisma: PrismaClient,
    private readonly upstreams: UpstreamManager,
    private readonly logger: Logger,
  ) {}

  /** After `tenant` was loaded (`reloaded` false: first load, only remember the stamps). */
  async check(tenant: TenantState, reloaded: boolean): Promise<void> {
    let rows: Array<{ id: string; toolsDiscoveredAt: Date | null }>;
    try {
      rows = await this.prisma.upstream.findMany({
        where: { tenantId: tenant.id },
        select: { id: true, toolsDiscoveredAt: true },
      });
    } catch (err) {
      this.logger.warn({ err, tenantId: tenant.id }, "could not read tool discovery stamps");
      return;
    }
    for (const row of rows) {
      const at = row.toolsDiscoveredAt?.getTime() ?? null;
      const before = this.seen.get(row.id);
      this.seen.set(row.id, at);
      // A stamp that moved without a catalog change (discovery found the same tools) costs one refetch.
      if (!reloaded || before === undefined || before === at) continue;
      const u = tenant.upstreams.find((x) => x.id === row.id);
      if (!u?.enabled) continue;
      this.logger.debug({ tenantId: tenant.id, upstream: u.name }, "tools rediscovered; refetching catalog");
      this.upstreams.markStale(u, "tools");
    }
  }

  /** Forgets a deleted tenant's upstreams. */
  forget(tenant: TenantState): void {
    for (const u of tenant.upstreams) this.seen.delete(u.id);
  }
}
