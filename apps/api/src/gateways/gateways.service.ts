import type { PrismaClient } from "@gatehouse/db";
import { AppError, ErrorCode, type GatewayNodeView, type Page } from "@gatehouse/shared";
import { Inject, Injectable } from "@nestjs/common";
import type { Caller } from "../common/caller.js";
import { iso } from "../common/pagination.js";
import { TenantAccessService } from "../common/tenant-access.service.js";
import { PRISMA } from "../common/tokens.js";

interface LiveNode {
  id: string;
  version: string;
  startedAt: Date;
  lastHeartbeatAt: Date;
  configVersions: Record<string, number>;
}
type ListLiveNodes = (prisma: Pick<PrismaClient, "gatewayNode">) => Promise<LiveNode[]>;

/**
 * The gateway's node registry decides who is live (apps/gateway/src/ops/node-registry.ts: a node
 * that missed three heartbeats drops out). Loaded on first use: the API alone should not load the
 * gateway's module graph at boot.
 */
async function loadListLiveNodes(): Promise<ListLiveNodes | undefined> {
  const gateway = (await import("@gatehouse/gateway")) as { listLiveNodes?: ListLiveNodes };
  return gateway.listLiveNodes;
}

@Injectable()
export class GatewaysService {
  private lister: Promise<ListLiveNodes | undefined> | undefined;

  constructor(
    @Inject(PRISMA) private readonly prisma: PrismaClient,
    @Inject(TenantAccessService) private readonly access: TenantAccessService,
  ) {}

  /** Every live node, newest first; the list is short and never paged (`nextCursor` is null). */
  async list(caller: Caller): Promise<Page<GatewayNodeView>> {
    this.access.requirePlatform(caller, "list gateway nodes");
    this.lister ??= loadListLiveNodes();
    const listLiveNodes = await this.lister;
    if (!listLiveNodes) {
      throw new AppError(
        ErrorCode.SERVICE_UNAVAILABLE,
        "This build's @gatehouse/gateway does not export listLiveNodes; the node list is unavailable",
      );
    }
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
