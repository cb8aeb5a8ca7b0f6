import type { Db } from "@gatehouse/db";
import type { Bus } from "@gatehouse/shared";
import type { Sealer } from "@gatehouse/shared/node";
import {
  type DynamicModule,
  Global,
  Inject,
  Injectable,
  Module,
  type OnApplicationShutdown,
} from "@nestjs/common";
import { APP_GUARD } from "@nestjs/core";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { SessionsService } from "../auth/sessions.service.js";
import type { ApiConfig } from "../config/api.config.js";
import { AuthGuard } from "./auth.guard.js";
import { ConfigVersionService } from "./config-version.service.js";
import { TenantAccessService } from "./tenant-access.service.js";
import { API_CONFIG, BUS, DB, LOGGER, METRICS, PRISMA, SEALER } from "./tokens.js";

export interface CoreDeps {
  config: ApiConfig;
  db: Db;
  bus: Bus;
  sealer: Sealer;
  logger: Logger;
  metrics: Registry;
  /** Closers of what the app created itself (not of what the caller passed in), run on shutdown. */
  owned: Array<() => Promise<void>>;
}

const OWNED = Symbol("OwnedResources");

@Injectable()
class OwnedResources implements OnApplicationShutdown {
  constructor(@Inject(OWNED) private readonly closers: Array<() => Promise<void>>) {}

  async onApplicationShutdown(): Promise<void> {
    for (const close of this.closers.splice(0).reverse()) await close();
  }
}

@Global()
@Module({})
export class CoreModule {}

/** The app-wide singletons, the auth guard and the services every resource module uses. */
export function coreModule(deps: CoreDeps): DynamicModule {
  const providers = [
    { provide: API_CONFIG, useValue: deps.config },
    { provide: DB, useValue: deps.db },
    { provide: PRISMA, useValue: deps.db.prisma },
    { provide: BUS, useValue: deps.bus },
    { provide: SEALER, useValue: deps.sealer },
    { provide: LOGGER, useValue: deps.logger },
    { provide: METRICS, useValue: deps.metrics },
    { provide: OWNED, useValue: deps.owned },
  ];
  return {
    module: CoreModule,
    providers: [
      ...providers,
      OwnedResources,
      TenantAccessService,
      ConfigVersionService,
      SessionsService,
      { provide: APP_GUARD, useClass: AuthGuard },
    ],
    exports: [...providers.map((p) => p.provide), TenantAccessService, ConfigVersionService, SessionsService],
  };
}
