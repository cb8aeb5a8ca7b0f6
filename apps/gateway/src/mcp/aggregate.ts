import { createHash } from "node:crypto";
import {
  AppError,
  namespaceUri,
  type Principal,
  parseNamespacedUri,
  prefixName,
  type UpstreamSnapshot,
} from "@gatehouse/shared";
import type { Logger } from "pino";
import type { TenantState } from "../tenancy/tenant-state.js";
import { toAppError } from "../upstream/upstream-client.js";
import type { Catalog, UpstreamManager } from "../upstream/upstream-manager.js";
import { invalidParams } from "./protocol.js";

type Json = Record<string, unknown>;

export type ListKind = "tools" | "prompts" | "resources" | "resourceTemplates";

/** The view of one caller on one endpoint: which upstreams, which names. */
export interface View {
  tenant: TenantState;
  principal: Principal;
  /** `/t/{tenant}/mcp/{upstream}`: that upstream alone, unprefixed; null: the aggregate endpoint. */
  single: UpstreamSnapshot | null;
}

/**
 * The name points at `upstream` (by its prefix), whose catalog could not be fetched to confirm
 * it: the caller gets the upstream's error, and the audit still knows which upstream was tried.
 */
export class CatalogUnavailableError extends AppError {
  constructor(
    readonly upstream: UpstreamSnapshot,
    readonly unprefixed: string,
    cause: AppError,
  ) {
    super(cause.code, cause.message, cause.details);
    this.cause = cause;
  }
}

export const PAGE_SIZE = 100;
/** A name missing from a catalog older than this triggers one refetch before TOOL_NOT_FOUND. */
const CATALOG_RECHECK_MS = 5000;

/** Upstreams this caller may reach on this endpoint: enabled, and usable under the policy (else never contacted). */
export function reachableUpstreams(view: View): UpstreamSnapshot[] {
  const candidates = view.single ? [view.single] : view.tenant.upstreams;
  return candidates
    .filter((u) => u.enabled && view.tenant.policy.mayUseUpstream(view.principal, u.name))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function exposeItem(view: View, u: UpstreamSnapshot, kind: ListKind, item: Json): Json | null {
  if (kind === "tools") {
    const name = String(item.name);
    if (!view.tenant.policy.isVisible({ principal: view.principal, upstream: u.name, tool: name }))
      return null;
    return view.single ? item : { ...item, name: prefixName(u.toolPrefix, name) };
  }
  if (view.single) return item;
  if (kind === "prompts") return { ...item, name: prefixName(u.toolPrefix, String(item.name)) };
  if (kind === "resources") return { ...item, uri: namespaceUri(u.name, String(item.uri)) };
  return { ...item, uriTemplate: namespaceUri(u.name, String(item.uriTemplate)) };
}

/**
 * Merges one kind of list across the reachable upstreams (catalogs from cache; an upstream that
 * cannot be listed is left out, so one outage never empties the list).
 */
export async function mergedList(
  view: View,
  upstreams: UpstreamManager,
  kind: ListKind,
  logger: Logger,
): Promise<Json[]> {
  const targets = reachableUpstreams(view);
  const catalogs = await Promise.allSettled(targets.map((u) => upstreams.catalog(u, view)));
  const out: Json[] = [];
  catalogs.forEach((c, i) => {
    const u = targets[i]!;
    if (c.status === "rejected") {
      logger.warn({ upstream: u.name, err: (c.reason as Error)?.message }, "upstream left out of list");
      if (view.single) throw c.reason;
      return;
    }
    for (const item of c.value[kind]) {
      const exposed = exposeItem(view, u, kind, item);
      if (exposed) out.push(exposed);
    }
  });
  return out;
}

/** Signature of a visible list (to tell whether a session's view changed). */
export function listSignature(items: Json[], key = "name"): string {
  const h = createHash("sha256");
  for (const it of items) h.update(String(it[key])).update("\n");
  return h.digest("hex").slice(0, 16);
}

/** Gateway's own opaque pagination cursor (MCP "Pagination": cursors are opaque to clients). */
export function encodeCursor(offset: number, kind: string): string {
  return Buffer.from(JSON.stringify({ o: offset, k: kind })).toString("base64url");
}

export function decodeCursor(cursor: unknown, kind: string): number {
  if (cursor === undefined || cursor === null) return 0;
  if (typeof cursor !== "string") throw invalidCursor();
  try {
    const v = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as { o?: unknown; k?: unknown };
    if (typeof v.o === "number" && Number.isInteger(v.o) && v.o >= 0 && v.k === kind) return v.o;
  } catch {
    // fall through
  }
  throw invalidCursor();
}

function invalidCursor(): AppError {
  return invalidParams("Invalid pagination cursor; start again without a cursor.");
}

export function page(items: Json[], cursor: unknown, kind: string): { items: Json[]; nextCursor?: string } {
  const offset = decodeCursor(cursor, kind);
  const slice = items.slice(offset, offset + PAGE_SIZE);
  const next = offset + PAGE_SIZE < items.length ? encodeCursor(offset + PAGE_SIZE, kind) : undefined;
  return next ? { items: slice, nextCursor: next } : { items: slice };
}

export interface Resolved {
  upstream: UpstreamSnapshot;
  /** The upstream's own name (tool, prompt) or URI. */
  name: string;
}

/**
 * Maps an exposed tool or prompt name back to its upstream. The longest matching prefix wins; a
 * name whose upstream cannot be listed right now fails with that upstream's error.
 */
export async function resolveName(
  view: View,
  upstreams: UpstreamManager,
  kind: "tools" | "prompts",
  exposed: string,
): Promise<Resolved | { denied: UpstreamSnapshot; name: string } | null> {
  if (view.single) {
    const u = view.single;
    if (!u.enabled) return null;
    if (!view.tenant.policy.mayUseUpstream(view.principal, u.name)) return { denied: u, name: exposed };
    return { upstream: u, name: exposed };
  }
  const matching = view.tenant.upstreams
    .filter((u) => u.enabled && exposed.startsWith(u.toolPrefix) && exposed.length > u.toolPrefix.length)
    .sort((a, b) => b.toolPrefix.length - a.toolPrefix.length);
  let firstError: CatalogUnavailableError | null = null;
  let denied: { denied: UpstreamSnapshot; name: string } | null = null;
  // Second pass: catalogs older than a few seconds are refetched once, for names added upstream
  // without a list_changed.
  for (const pass of [0, 1]) {
    for (const u of matching) {
      const name = exposed.slice(u.toolPrefix.length);
      if (!view.tenant.policy.mayUseUpstream(view.principal, u.name)) {
        if (pass === 0) denied ??= { denied: u, name };
        continue;
      }
      let catalog: Catalog;
      try {
        catalog =
          pass === 0
            ? await upstreams.catalog(u, view)
            : await upstreams.refreshIfOlder(u, CATALOG_RECHECK_MS, view);
      } catch (err) {
        firstError ??= new CatalogUnavailableError(
          u,
          name,
          err instanceof AppError ? err : toAppError(err, u, "connect"),
        );
        continue;
      }
      if ((kind === "tools" ? catalog.toolNames : catalog.promptNames).has(name))
        return { upstream: u, name };
    }
    if (firstError) throw firstError;
  }
  return denied;
}

/** Maps an exposed resource URI back to its upstream. */
export function resolveUri(view: View, exposed: string): Resolved | null {
  if (view.single) return view.single.enabled ? { upstream: view.single, name: exposed } : null;
  const parsed = parseNamespacedUri(exposed);
  if (!parsed) return null;
  const u = view.tenant.upstreamsByName.get(parsed.upstream);
  if (!u?.enabled) return null;
  return { upstream: u, name: parsed.uri };
}

/** Namespaces resource URIs inside results (resource links, embedded resources) on the aggregate endpoint. */
export function namespaceContent(view: View, u: UpstreamSnapshot, result: Json): Json {
  if (view.single) return result;
  const mapBlock = (b: unknown): unknown => {
    if (!b || typeof b !== "object") return b;
    const block = b as Json;
    if (block.type === "resource_link" && typeof block.uri === "string") {
      return { ...block, uri: namespaceUri(u.name, block.uri) };
    }
    if (block.type === "resource" && block.resource && typeof block.resource === "object") {
      const r = block.resource as Json;
      if (typeof r.uri === "string")
        return { ...block, resource: { ...r, uri: namespaceUri(u.name, r.uri) } };
    }
    return block;
  };
  const out: Json = { ...result };
  if (Array.isArray(result.content)) out.content = result.content.map(mapBlock);
  if (Array.isArray(result.messages)) {
    out.messages = result.messages.map((m) =>
      m && typeof m === "object" ? { ...(m as Json), content: mapBlock((m as Json).content) } : m,
    );
  }
  if (Array.isArray(result.contents)) {
    out.contents = result.contents.map((c) =>
      c && typeof c === "object" && typeof (c as Json).uri === "string"
        ? { ...(c as Json), uri: namespaceUri(u.name, (c as Json).uri as string) }
        : c,
    );
  }
  return out;
}
