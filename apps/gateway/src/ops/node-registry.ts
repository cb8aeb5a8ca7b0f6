import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { type GatewayNodeDb, type Prisma, pruneDeadNodes } from "@gatehouse/db";

export interface NodeRegistryOptions {
  prisma: GatewayNodeDb;
  /** Gateway version (package version or build id). */
  version: string;
  /** Node id; default `<hostname>-<pid>-<random>`. */
  id?: string;
  /** Heartbeat period. Default 5 s. */
  intervalMs?: number;
  /** `{tenantId: version}` of the snapshots applied now; read at each heartbeat. */
  configVersions?: () => Record<string, number>;
  logger?: { warn(obj: object, msg: string): void };
}

/** A stable-enough unique id for this process. */
export function defaultNodeId(): string {
  return `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;
}

/**
 * Keeps this node's row in `GatewayNode` fresh. `start()` writes the row and beats every
 * `intervalMs`; `stop()` removes it. The config versions map is written only when it changed
 * (with 10,000 tenants it is a few hundred KB), otherwise a beat updates the timestamp alone.
 */
export class NodeRegistry {
  readonly id: string;
  readonly startedAt = new Date();
  private timer: NodeJS.Timeout | undefined;
  private lastVersionsJson: string | null = null;
  private inFlight: Promise<void> | null = null;
  private stopped = false;

  constructor(private readonly options: NodeRegistryOptions) {
    this.id = options.id ?? defaultNodeId();
  }

  /** Writes the row now (throws if the database refuses), then heartbeats in the background. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.beat();
    // Rows of crashed nodes are never deleted by their owner; each node that starts sweeps the
    // ones silent for a day, so the table stays as small as the fleet.
    pruneDeadNodes(this.options.prisma).catch((err: unknown) =>
      this.options.logger?.warn({ err }, "node registry: pruning dead nodes failed"),
    );
    this.timer = setInterval(() => {
      if (this.inFlight) return; // the previous beat is still waiting on the database
      this.beat().catch((err: unknown) =>
        this.options.logger?.warn({ err }, "node registry: heartbeat failed"),
      );
    }, this.options.intervalMs ?? 5000);
    this.timer.unref();
  }

  /** One heartbeat: upsert the row (so a row removed by a pruner comes back). */
  beat(): Promise<void> {
    const run = this.write().finally(() => {
      if (this.inFlight === run) this.inFlight = null;
    });
    this.inFlight = run;
    return run;
  }

  private async write(): Promise<void> {
    if (this.stopped) return;
    const now = new Date();
    const versions = this.options.configVersions?.() ?? {};
    const json = JSON.stringify(versions);
    const changed = json !== this.lastVersionsJson;
    const configVersions = versions as Prisma.InputJsonObject;
    await this.options.prisma.gatewayNode.upsert({
      where: { id: this.id },
      create: {
        id: this.id,
        version: this.options.version,
        startedAt: this.startedAt,
        lastHeartbeatAt: now,
        configVersions,
      },
      update: changed
        ? { lastHeartbeatAt: now, configVersions, version: this.options.version }
        : { lastHeartbeatAt: now },
    });
    this.lastVersionsJson = json;
  }

  /** Stops heartbeating and deletes the row, so the node drops out of the list at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.inFlight?.catch(() => {});
    await this.options.prisma.gatewayNode.deleteMany({ where: { id: this.id } });
  }
}
