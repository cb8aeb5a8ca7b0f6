import type { Db } from "@gatehouse/db";
import { AppError, type Bus, ErrorCode } from "@gatehouse/shared";
import { Controller, Get, Header, Inject } from "@nestjs/common";
import { ApiOperation, ApiResponse, ApiTags } from "@nestjs/swagger";
import type { Registry } from "prom-client";
import { Public } from "../common/caller.js";
import { BUS, DB, METRICS } from "../common/tokens.js";

const READINESS_TIMEOUT_MS = 2000;

@ApiTags("health")
@Public()
@Controller()
export class HealthController {
  constructor(
    @Inject(DB) private readonly db: Db,
    @Inject(BUS) private readonly bus: Bus,
    @Inject(METRICS) private readonly registry: Registry,
  ) {}

  @Get("healthz")
  @ApiOperation({ summary: "Liveness: 200 while the process is up" })
  healthz() {
    return { status: "ok" };
  }

  @Get("readyz")
  @ApiOperation({ summary: "Readiness: 200 when the database answers, else 503" })
  @ApiResponse({
    status: 503,
    description: "SERVICE_UNAVAILABLE",
    schema: { $ref: "#/components/schemas/Problem" },
  })
  async readyz() {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.db.prisma.$queryRaw`SELECT 1`,
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error("timeout")), READINESS_TIMEOUT_MS);
        }),
      ]);
    } catch {
      throw new AppError(ErrorCode.SERVICE_UNAVAILABLE, "The database is unreachable; retry later");
    } finally {
      clearTimeout(timer);
    }
    return {
      status: "ready",
      database: this.db.kind,
      bus: this.bus.connected ? "connected" : "disconnected",
    };
  }

  @Get("metrics")
  @Header("content-type", "text/plain; version=0.0.4; charset=utf-8")
  @ApiOperation({ summary: "Prometheus metrics" })
  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}
