import type { PrismaClient, Upstream } from "@gatehouse/db";
import {
  AppError,
  type DiscoveredTool,
  ErrorCode,
  type FieldError,
  isOAuthAuthMode,
  type Page,
  type PaginationQuery,
  SECRET_MASK,
  type ToolsPageQuery,
  type UpstreamAuth,
  type UpstreamCreate,
  type UpstreamTransport,
  type UpstreamUpdate,
  type UpstreamView,
  upstreamTransportErrors,
} from "@gatehouse/shared";
import { type EgressPolicy, egressPolicy, refusedUrlReason, type Sealer } from "@gatehouse/shared/node";
import { Inject, Injectable } from "@nestjs/common";
import type { Caller } from "../common/caller.js";
import { ConfigVersionService } from "../common/config-version.service.js";
import { iso, pageArgs, toPage } from "../common/pagination.js";
import { TenantAccessService } from "../common/tenant-access.service.js";
import { API_CONFIG, PRISMA, SEALER } from "../common/tokens.js";
import type { ApiConfig } from "../config/api.config.js";
import { CredentialsService } from "../oauth/credentials.service.js";
import { oauthAuthFromRow, oauthColumns } from "../oauth/upstream-auth.js";

/** An upstream with its secrets unsealed: only ever in memory, never in a response or a log. */
interface PlainUpstream {
  name: string;
  description: string | null;
  transport: UpstreamTransport;
  url: string | null;
  command: string | null;
  args: string[];
  env: Record<string, string>;
  toolPrefix: string;
  headers: Record<string, string>;
  auth: UpstreamAuth;
  enabled: boolean;
  timeoutMs: number | null;
}

// The Prisma enum cannot hold a dash; the database and the API both say "streamable-http".
const toDbTransport = (t: UpstreamTransport) => (t === "streamable-http" ? "streamable_http" : t);
const fromDbTransport = (t: Upstream["transport"]): UpstreamTransport =>
  t === "streamable_http" ? "streamable-http" : t;

@Injectable()
export class UpstreamsService {
  constructor(
    @Inject(PRISMA) private readonly prisma: PrismaClient,
    @Inject(SEALER) private readonly sealer: Sealer,
    @Inject(TenantAccessService) private readonly access: TenantAccessService,
    @Inject(ConfigVersionService) private readonly versions: ConfigVersionService,
    @Inject(CredentialsService) private readonly credentials: CredentialsService,
    @Inject(API_CONFIG) config: ApiConfig,
  ) {
    this.egress = egressPolicy(config);
  }

  private readonly egress: EgressPolicy;

  /** 400 naming `url` when the egress policy refuses where it points (EGRESS_* settings). */
  private async checkEgress(url: string | null): Promise<void> {
    if (!url) return;
    const why = await refusedUrlReason(url, this.egress);
    if (why) {
      throw new AppError(ErrorCode.VALIDATION_FAILED, "Invalid request body: check url", [
        { path: "url", message: `Gatehouse does not connect there: ${why}` },
      ]);
    }
  }

  async create(caller: Caller, ref: string, body: UpstreamCreate): Promise<UpstreamView> {
    const tenant = await this.access.resolve(caller, ref, "write");
    const plain: PlainUpstream = {
      name: body.name,
      description: body.description ?? null,
      transport: body.transport,
      url: body.url ?? null,
      command: body.command ?? null,
      args: body.args ?? [],
      env: body.env ?? {},
      toolPrefix: body.toolPrefix ?? `${body.name}_`,
      headers: body.headers ?? {},
      auth: body.auth ?? { mode: "none" },
      enabled: body.enabled ?? true,
      timeoutMs: body.timeoutMs ?? null,
    };
    rejectMaskedSecrets(plain);
    await this.checkEgress(plain.url);
    const row = await this.versions.write(tenant.id, async (tx) =>
      tx.upstream.create({
        data: {
          tenantId: tenant.id,
          ...this.toColumns(plain, await oauthColumns(tx, tenant.id, plain.auth, plain.url)),
        },
      }),
    );
    return this.view(row);
  }

  async list(caller: Caller, ref: string, query: PaginationQuery): Promise<Page<UpstreamView>> {
    const tenant = await this.access.resolve(caller, ref, "read");
    const args = pageArgs(query);
    const rows = await this.prisma.upstream.findMany({
      ...args,
      where: { ...args.where, tenantId: tenant.id },
    });
    return toPage(rows, query, (u) => this.view(u));
  }

  async get(caller: Caller, ref: string, name: string): Promise<UpstreamView> {
    const tenant = await this.access.resolve(caller, ref, "read");
    return this.view(await this.find(tenant.id, name));
  }

  /**
   * The catalog the worker last discovered, a page at a time in name order (the shape of every
   * list); no items until discovery has run.
   */
  async tools(
    caller: Caller,
    ref: string,
    name: string,
    query: ToolsPageQuery,
  ): Promise<Page<DiscoveredTool>> {
    const tenant = await this.access.resolve(caller, ref, "read");
    const row = await this.find(tenant.id, name);
    const all = Array.isArray(row.tools) ? (row.tools as DiscoveredTool[]) : [];
    const sorted = [...all].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const after = query.cursor;
    const rest = after === undefined ? sorted : sorted.filter((t) => t.name > after);
    const items = rest.slice(0, query.limit);
    return { items, nextCursor: rest.length > query.limit ? (items.at(-1)?.name ?? null) : null };
  }

  async update(caller: Caller, ref: string, name: string, patch: UpstreamUpdate): Promise<UpstreamView> {
    const tenant = await this.access.resolve(caller, ref, "write");
    if (patch.url) await this.checkEgress(patch.url);
    if (patch.url !== undefined) {
      // A new destination: OAuth tokens obtained for the old url are deleted (and every gateway
      // told) before the url changes, so no node can send them there. The merge runs first so that
      // a PATCH refused for a secret not sent again (see `merge`) changes nothing.
      const existing = await this.find(tenant.id, name);
      if (existing.url !== patch.url) {
        this.merge(this.unseal(existing), patch);
        await this.credentials.forgetDestination(tenant.id, [existing.id]);
      }
    }
    // Read, merge and write inside the transaction: the version bump locks the tenant row first,
    // so two concurrent PATCHes cannot lose each other's changes.
    const row = await this.versions.write(tenant.id, async (tx) => {
      const existing = await tx.upstream.findUnique({
        where: { tenantId_name: { tenantId: tenant.id, name } },
      });
      if (!existing) throw notFound(name);
      const merged = this.merge(this.unseal(existing), patch);
      const oauth = await oauthColumns(tx, tenant.id, merged.auth, merged.url, existing);
      return tx.upstream.update({ where: { id: existing.id }, data: this.toColumns(merged, oauth) });
    });
    return this.view(row);
  }

  async remove(caller: Caller, ref: string, name: string): Promise<void> {
    const tenant = await this.access.resolve(caller, ref, "write");
    await this.versions.write(tenant.id, async (tx) => {
      const { count } = await tx.upstream.deleteMany({ where: { tenantId: tenant.id, name } });
      if (count === 0) throw notFound(name);
    });
  }

  private async find(tenantId: string, name: string): Promise<Upstream> {
    const row = await this.prisma.upstream.findUnique({ where: { tenantId_name: { tenantId, name } } });
    if (!row) throw notFound(name);
    return row;
  }

  /** Applies a PATCH: masked secrets keep their stored value, a transport switch clears the other transport's fields. */
  private merge(current: PlainUpstream, patch: UpstreamUpdate): PlainUpstream {
    const errors: FieldError[] = [];
    const next: PlainUpstream = { ...current };
    for (const [key, value] of Object.entries(patch)) {
      if (value !== undefined) (next as unknown as Record<string, unknown>)[key] = value;
    }
    if (patch.transport && patch.transport !== current.transport) {
      if (patch.transport === "stdio") {
        if (patch.url === undefined) next.url = null;
      } else {
        if (patch.command === undefined) next.command = null;
        if (patch.args === undefined) next.args = [];
        if (patch.env === undefined) next.env = {};
      }
    }
    // A renamed upstream keeps a default prefix in step with its name.
    if (patch.name && patch.toolPrefix === undefined && current.toolPrefix === `${current.name}_`) {
      next.toolPrefix = `${patch.name}_`;
    }
    if (patch.headers) next.headers = keepMasked(patch.headers, current.headers, "headers", errors);
    if (patch.env) next.env = keepMasked(patch.env, current.env, "env", errors);
    if (patch.auth) next.auth = keepMaskedAuth(patch.auth, current.auth, errors);
    if (next.url !== null && next.url !== current.url) {
      for (const e of secretsNotSentAgain(patch, next))
        if (!errors.some((x) => x.path === e.path)) errors.push(e);
    }
    errors.push(...upstreamTransportErrors(next));
    if (errors.length > 0) {
      throw new AppError(
        ErrorCode.VALIDATION_FAILED,
        `Invalid request body: check ${errors.map((e) => e.path).join(", ")}`,
        errors,
      );
    }
    return next;
  }

  /** `oauth`: the OAuth modes' columns (`oauthColumns`), null for the others. */
  private toColumns(u: PlainUpstream, oauth: Awaited<ReturnType<typeof oauthColumns>>) {
    const { mode } = u.auth;
    const authSecret =
      u.auth.mode === "bearer" ? u.auth.token : u.auth.mode === "header" ? u.auth.value : null;
    return {
      name: u.name,
      description: u.description,
      transport: toDbTransport(u.transport),
      url: u.url,
      command: u.command,
      args: u.args,
      envSealed: Object.keys(u.env).length > 0 ? this.sealer.sealJson(u.env) : null,
      toolPrefix: u.toolPrefix,
      headersSealed: Object.keys(u.headers).length > 0 ? this.sealer.sealJson(u.headers) : null,
      authMode: mode,
      authConfig: u.auth.mode === "header" ? { headerName: u.auth.headerName } : (oauth?.authConfig ?? {}),
      oauthClientId: oauth?.oauthClientId ?? null,
      authSecretSealed: authSecret ? this.sealer.seal(authSecret) : null,
      enabled: u.enabled,
      timeoutMs: u.timeoutMs,
    } as const;
  }

  private unseal(row: Upstream): PlainUpstream {
    const secret = row.authSecretSealed ? this.sealer.unseal(row.authSecretSealed) : "";
    const config = (row.authConfig ?? {}) as { headerName?: string };
    let auth: UpstreamAuth;
    if (row.authMode === "bearer") auth = { mode: "bearer", token: secret };
    else if (row.authMode === "header")
      auth = { mode: "header", headerName: config.headerName ?? "", value: secret };
    else if (isOAuthAuthMode(row.authMode)) auth = oauthAuthFromRow(row);
    else auth = { mode: "none" };
    return {
      name: row.name,
      description: row.description,
      transport: fromDbTransport(row.transport),
      url: row.url,
      command: row.command,
      args: row.args,
      env: row.envSealed ? this.sealer.unsealJson<Record<string, string>>(row.envSealed) : {},
      toolPrefix: row.toolPrefix,
      headers: row.headersSealed ? this.sealer.unsealJson<Record<string, string>>(row.headersSealed) : {},
      auth,
      enabled: row.enabled,
      timeoutMs: row.timeoutMs,
    };
  }

  /** What the API shows: secret values masked, names kept so an operator can tell what is set. */
  view(row: Upstream): UpstreamView {
    const plain = this.unseal(row);
    const mask = (record: Record<string, string>) =>
      Object.fromEntries(Object.keys(record).map((k) => [k, SECRET_MASK]));
    const auth: UpstreamView["auth"] =
      plain.auth.mode === "bearer"
        ? { mode: "bearer", token: SECRET_MASK }
        : plain.auth.mode === "header"
          ? { mode: "header", headerName: plain.auth.headerName, value: SECRET_MASK }
          : isOAuthAuthMode(plain.auth.mode)
            ? plain.auth
            : { mode: row.authMode };
    return {
      id: row.id,
      name: row.name,
      description: row.description,
      transport: plain.transport,
      url: row.url,
      command: row.command,
      args: row.args,
      env: mask(plain.env),
      toolPrefix: row.toolPrefix,
      headers: mask(plain.headers),
      auth,
      enabled: row.enabled,
      timeoutMs: row.timeoutMs,
      toolsDiscoveredAt: iso(row.toolsDiscoveredAt),
      toolCount: Array.isArray(row.tools) ? row.tools.length : null,
      health: row.health,
      healthCheckedAt: iso(row.healthCheckedAt),
      createdAt: iso(row.createdAt),
      updatedAt: iso(row.updatedAt),
    };
  }
}

function notFound(name: string): AppError {
  return new AppError(ErrorCode.NOT_FOUND, `Upstream '${name}' not found`);
}

/** The mask is what responses show; storing it as a real secret would be a mistake. */
function rejectMaskedSecrets(u: PlainUpstream): void {
  const errors: FieldError[] = [];
  const message = `'${SECRET_MASK}' is how responses hide secrets; send the real value`;
  for (const [k, v] of Object.entries(u.headers))
    if (v === SECRET_MASK) errors.push({ path: `headers.${k}`, message });
  for (const [k, v] of Object.entries(u.env))
    if (v === SECRET_MASK) errors.push({ path: `env.${k}`, message });
  if (u.auth.mode === "bearer" && u.auth.token === SECRET_MASK) errors.push({ path: "auth.token", message });
  if (u.auth.mode === "header" && u.auth.value === SECRET_MASK) errors.push({ path: "auth.value", message });
  if (errors.length > 0) {
    throw new AppError(
      ErrorCode.VALIDATION_FAILED,
      `Invalid request body: check ${errors.map((e) => e.path).join(", ")}`,
      errors,
    );
  }
}

/**
 * A secret an admin typed goes only to the url it was typed for: a PATCH that changes `url` must
 * send every stored static secret again (bearer token, header value, each static header), real
 * values, not the mask. The alternative, keeping them, once sent a tenant's token to a new host.
 */
function secretsNotSentAgain(patch: UpstreamUpdate, next: PlainUpstream): FieldError[] {
  const message =
    "The url changes, and stored secrets are never sent to a new destination: send this value again, or remove it";
  const fresh = (v: string | undefined) => v !== undefined && v !== SECRET_MASK;
  const out: FieldError[] = [];
  if (next.auth.mode === "bearer" && !(patch.auth?.mode === "bearer" && fresh(patch.auth.token)))
    out.push({ path: "auth.token", message });
  if (next.auth.mode === "header" && !(patch.auth?.mode === "header" && fresh(patch.auth.value)))
    out.push({ path: "auth.value", message });
  for (const k of Object.keys(next.headers))
    if (!fresh(patch.headers?.[k])) out.push({ path: `headers.${k}`, message });
  return out;
}

function keepMasked(
  sent: Record<string, string>,
  stored: Record<string, string>,
  field: string,
  errors: FieldError[],
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(sent)) {
    if (v !== SECRET_MASK) out[k] = v;
    else if (stored[k] !== undefined) out[k] = stored[k];
    else
      errors.push({
        path: `${field}.${k}`,
        message: `No stored value to keep; send the real value instead of '${SECRET_MASK}'`,
      });
  }
  return out;
}

function keepMaskedAuth(sent: UpstreamAuth, stored: UpstreamAuth, errors: FieldError[]): UpstreamAuth {
  const missing = (path: string) =>
    errors.push({
      path,
      message: `No stored secret to keep; send the real value instead of '${SECRET_MASK}'`,
    });
  if (sent.mode === "bearer" && sent.token === SECRET_MASK) {
    if (stored.mode === "bearer") return { mode: "bearer", token: stored.token };
    missing("auth.token");
  }
  if (sent.mode === "header" && sent.value === SECRET_MASK) {
    if (stored.mode === "header") return { ...sent, value: stored.value };
    missing("auth.value");
  }
  return sent;
}
