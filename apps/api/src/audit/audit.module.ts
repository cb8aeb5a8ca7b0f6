import { Module } from "@nestjs/common";
import { APP_INTERCEPTOR } from "@nestjs/core";
import { JobsModule } from "../jobs/jobs.module.js";
import { AdminAuditInterceptor } from "./admin-audit.interceptor.js";
import { AdminAuditService } from "./admin-audit.service.js";
import { AuditController } from "./audit.controller.js";
import { AuditService } from "./audit.service.js";
import { AuditRetentionService, AuditRetentionWorker } from "./audit-retention.js";

/**
 * The audit log: `GET /v1/tenants/{tenant}/audit`, an admin event for every API write (a global
 * interceptor), and the daily retention job.
 */
@Module({
  imports: [JobsModule],
  controllers: [AuditController],
  providers: [
    AuditService,
    AdminAuditService,
    { provide: APP_INTERCEPTOR, useClass: AdminAuditInterceptor },
    AuditRetentionService,
    AuditRetentionWorker,
  ],
  exports: [AdminAuditService, AuditRetentionService],
})
export class AuditModule {}
