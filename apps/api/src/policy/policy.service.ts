import type { Policy, PrismaClient } from "@gatehouse/db";
import {
  AppError,
  compilePolicy,
  DEFAULT_POLICY,
  ErrorCode,
  type PolicyDocument,
  type PolicyExplanation,
  type PolicySaved,
  type PolicySimulate,
  type PolicyView,
  type Principal,
} from "@gatehouse/shared";
import { Inject, Injectable } from "@nestjs/common";
import { type Caller, describeCaller } from "../common/caller.js";
import { ConfigVersionService } from "../common/config-version.service.js";
import { iso } from "../common/pagination.js";
import { TenantAccessService } from "../common/tenant-access.service.js";
import { PRISMA } from "../common/tokens.js";
import { policyWarnings, type UpstreamCatalog } from "./policy-warnings.js";

/** A PUT: the document, and the version it was based on when the caller wants a conflict check. */
export interface PolicyPut {
  document: unknown;
  /** Where in the body the document sits, so error paths point at the right place. */
  pathPrefix: string;
  expectedVersion?: number;
}

@Injectable()
export class PolicyService {
  constructor(
    @Inject(PRISMA) private readonly prisma: PrismaClient,
    @Inject(TenantAccessService) private readonly access: TenantAccessService,
    @Inject(ConfigVersionService) private readonly versions: ConfigVersionService,
  ) {}

  async get(caller: Caller, ref: string): Promise<PolicyView> {
    const tenant = await this.access.resolve(caller, ref, "read");
    return view(await this.current(this.prisma, tenant.id));
  }

  /** Compiles every rule and CEL condition (400 naming the bad one), then stores a new version. */
  async put(caller: Caller, ref: string, put: PolicyPut): Promise<PolicySaved> {
    const tenant = await this.access.resolve(caller, ref, "write");
    const document = compile(put.document, put.pathPrefix).document;
    const row = await this.versions.write(tenant.id, async (tx) => {
      const current = await this.current(tx, tenant.id);
      const currentVersion = current?.version ?? 0;
      if (put.expectedVersion !== undefined && put.expectedVersion !== currentVersion) {
        throw new AppError(
          ErrorCode.CONFLICT,
          `The policy changed since version ${put.expectedVersion} (now ${currentVersion}); GET it again and reapply your change`,
          [{ path: "version", message: `Current version is ${currentVersion}` }],
        );
      }
      return tx.policy.create({
        data: {
          tenantId: tenant.id,
          version: currentVersion + 1,
          document: document as object,
          createdBy: describeCaller(caller),
        },
      });
    });
    const upstreams = await this.prisma.upstream.findMany({
      where: { tenantId: tenant.id },
      select: { name: true, toolPrefix: true, tools: true },
      orderBy: { name: "asc" },
    });
    const catalogs: UpstreamCatalog[] = upstreams.map((u) => ({
      name: u.name,
      toolPrefix: u.toolPrefix,
      tools: Array.isArray(u.tools) ? (u.tools as UpstreamCatalog["tools"]) : null,
    }));
    return { ...view(row), warnings: policyWarnings(document, catalogs) };
  }

  /** What the current policy decides for one call, with the trace of every rule. */
  async simulate(caller: Caller, ref: string, input: PolicySimulate): Promise<PolicyExplanation> {
    const tenant = await this.access.resolve(caller, ref, "read");
    const current = await this.current(this.prisma, tenant.id);
    const compiled = compilePolicy(current?.document ?? DEFAULT_POLICY);
    const p = input.principal;
    const principal: Principal = {
      kind: p.subject ? "jwt" : "api_key",
      id: p.subject ? `sub:${p.subject}` : p.keyId ? `key:${p.keyId}` : "simulated",
      ...(p.keyId ? { keyId: p.keyId } : {}),
      ...(p.subject ? { subject: p.subject } : {}),
      agent: p.agent ?? null,
      roles: p.roles ?? [],
      claims: p.claims ?? {},
    };
    return compiled.explain({
      principal,
      upstream: input.upstream,
      tool: input.tool,
      args: input.arguments ?? {},
    });
  }

  private current(db: Pick<PrismaClient, "policy">, tenantId: string): Promise<Policy | null> {
    return db.policy.findFirst({ where: { tenantId }, orderBy: { version: "desc" } });
  }
}

function compile(document: unknown, pathPrefix: string) {
  try {
    return compilePolicy(document);
  } catch (err) {
    if (err instanceof AppError && pathPrefix && Array.isArray(err.details)) {
      const details = (err.details as { path?: unknown; message?: unknown }[]).map((d) => ({
        ...d,
        path: d.path ? `${pathPrefix}.${String(d.path)}` : pathPrefix,
      }));
      throw new AppError(err.code, err.message, details);
    }
    throw err;
  }
}

function view(p: Policy | null): PolicyView {
  if (!p) return { version: 0, document: DEFAULT_POLICY as PolicyDocument, createdAt: null, createdBy: null };
  return {
    version: p.version,
    document: p.document as PolicyDocument,
    createdAt: iso(p.createdAt),
    createdBy: p.createdBy,
  };
}
