import type { Prisma, PrismaClient } from "@gatehouse/db";
import { type Bus, BusChannel, type ConfigEvent } from "@gatehouse/shared";
import { Inject, Injectable } from "@nestjs/common";
import type { Logger } from "pino";
import { BUS, LOGGER, PRISMA } from "./tokens.js";

export type Tx = Prisma.TransactionClient;

/**
 * Every write that changes what a gateway must know goes through here: the tenant's
 * `configVersion` is bumped in the same transaction as the write, and `{tenantId, version}` is
 * published on the bus after commit (architecture.md "Config propagation").
 */
@Injectable()
export class ConfigVersionService {
  constructor(
    @Inject(PRISMA) private readonly prisma: PrismaClient,
    @Inject(BUS) private readonly bus: Bus,
    @Inject(LOGGER) private readonly log: Logger,
  ) {}

  /** Runs `write` and the version bump in one transaction, then announces the new version. */
  async write<T>(tenantId: string, write: (tx: Tx) => Promise<T>): Promise<T> {
    const { result, version } = await this.prisma.$transaction(async (tx) => {
      // Bump first: the row lock serialises concurrent config writes of one tenant.
      const { configVersion } = await tx.tenant.update({
        where: { id: tenantId },
        data: { configVersion: { increment: 1 } },
        select: { configVersion: true },
      });
      return { result: await write(tx), version: configVersion };
    });
    await this.announce({ tenantId, version });
    return result;
  }

  /** Deletes the tenant and everything it owns (schema cascades), then tells gateways to drop it. */
  async deleteTenant(tenantId: string): Promise<void> {
    const { configVersion } = await this.prisma.tenant.delete({
      where: { id: tenantId },
      select: { configVersion: true },
    });
    await this.announce({ tenantId, version: configVersion + 1, deleted: true });
  }

  /**
   * Publishes after commit. A failed publish is logged, not thrown: the write is committed, and
   * gateways heal missed events by comparing versions when the bus reconnects.
   */
  async announce(event: ConfigEvent): Promise<void> {
    try {
      await this.bus.publish(BusChannel.config, event);
    } catch (err) {
      this.log.warn({ err, tenantId: event.tenantId, version: event.version }, "config event not published");
    }
  }
}
