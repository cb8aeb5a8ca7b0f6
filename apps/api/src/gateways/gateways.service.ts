import { listLiveNodes, type PrismaClient } from "@gatehouse/db";
import type { GatewayNodeView, Page } from "@gatehouse/shared";
import { Inject, Injectable } from "@nestjs/common";
import type { Caller } from "../common/caller.js";
import { iso } from "../common/pagination.js";
import { TenantAccessService } from "../common/tenant-access.service.js";
import { PRISMA } from "../common/tokens.js";

@Injectable()
export class GatewaysService {
  constructor(
    @Inject(PRISMA) private readonly prisma: PrismaClient,
    @Inject(TenantAccessService) private readonly access: TenantAccessService,
  ) {}

  /** Every live node, newest first; the list is short and never paged (`nextCursor` is null). */
  async list(caller: Caller): Promise<Page<GatewayNodeView>> {
    this.access.requirePlatform(caller, "list gateway nodes");
    const nodes = await listLiveNodes(this.prisma);
    return {
      items: nodes.map((n) => ({
        id: n.id,
        version: n.version,
        startedAt: iso(n.startedAt),
        lastHeartbeatAt: iso(n.lastHeartbeatAt),
        configVersions: n.configVersions,
      })),
      nextCursor: null,
    };
  }
}
