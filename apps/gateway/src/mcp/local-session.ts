import { randomBytes } from "node:crypto";
import { namespaceUri, type Principal, type UpstreamSnapshot } from "@gatehouse/shared";
import type { ClientCapabilities } from "@modelcontextprotocol/client";
import type { Logger } from "pino";
import type { ResponseChannel, SseStream } from "../http/sse.js";
import type { SessionRecord, SessionStore } from "../sessions/session-store.js";
import { isSessionGone, toAppError, type UpstreamLink } from "../upstream/upstream-client.js";
import { type UpstreamManager, upstreamKey } from "../upstream/upstream-manager.js";

/** A downstream request being served on this node. */
export interface InflightRequest {
  id: string | number;
  upstreamId: string | null;
  abort: AbortController;
  channel: ResponseChannel;
  startedAt: number;
}

/** Pending server-to-client request (sampling, elicitation, roots) relayed with a gateway-side id. */
interface PendingClientRequest {
  resolve(result: unknown): void;
  reject(err: Error): void;
  /** The session (and principal) the request was sent to: only its answer may settle it. */
  sessionId: string;
  principalId: string;
  timer: NodeJS.Timeout;
}

/** What an agent POSTed as the answer to a relayed request, with the session it came on. */
export interface ClientResponse {
  id: unknown;
  result?: unknown;
  error?: unknown;
}

const CLIENT_REQUEST_TIMEOUT_MS = 10 * 60_000;
/** Relay channel every node listens on. */
const ALL_NODES = "*";

export class ClientRequestError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
  }
}

/**
 * A session's state on this node: the record (mirrored in the store), the GET stream, the
 * lazily opened upstream sessions, and the requests in flight.
 */
export class LocalSession {
  getStream: SseStream | null = null;
  readonly conns = new Map<string, Promise<UpstreamLink>>();
  readonly inflight = new Map<string, InflightRequest>();
  lastUsedAt = Date.now();
  lastTouchedStoreAt = Date.now();
  /** Signature of the tools list last sent to the client, to relay list_changed only when it changed. */
  toolsSignature: string | null = null;
  closed = false;

  constructor(
    public record: SessionRecord,
    public principal: Principal,
  ) {}

  get id(): string {
    return this.record.id;
  }

  static key(id: string | number): string {
    return typeof id === "number" ? `n:${id}` : `s:${id}`;
  }

  /** Sends a message on the GET stream, if one is open here. */
  notify(message: unknown): boolean {
    if (!this.getStream || this.getStream.isClosed) return false;
    return this.getStream.send(message);
  }

  /** The channel for a message related to upstream `upstreamId`: its newest open request stream, else the GET stream. */
  relatedSend(upstreamId: string | null, message: unknown): boolean {
    const candidates = [...this.inflight.values()].filter((r) => r.channel.canStream);
    const match =
      candidates.filter((r) => r.upstreamId === upstreamId).at(-1) ??
      (candidates.length === 1 ? candidates[0] : undefined);
    if (match?.channel.send(message)) return true;
    return this.notify(message);
  }
}

/** A 2026-07-28 `subscriptions/listen` stream: change notifications for one caller's view. */
export interface ModernListener {
  id: string | number;
  tenantId: string;
  principal: Principal;
  /** Upstream name of a single-upstream endpoint, null for the aggregate one. */
  upstream: string | null;
  filter: { toolsListChanged?: boolean; promptsListChanged?: boolean; resourcesListChanged?: boolean };
  stream: SseStream;
  toolsSignature: string | null;
}

export interface SessionRegistryOptions {
  store: SessionStore;
  upstreams: UpstreamManager;
  nodeId: string;
  logger: Logger;
  /** How long a session may sit unused on this node before its local state is dropped (it stays in the store). */
  localIdleMs?: number;
  /** An agent's answer that matched no relayed request of its own session (ignored): counted. */
  onStrayResponse?(): void;
}

/** This node's sessions, the server-to-client request relay, and upstream session management. */
export class SessionRegistry {
  readonly sessions = new Map<string, LocalSession>();
  /** Open 2026-07-28 `subscriptions/listen` streams on this node. */
  readonly listeners = new Set<ModernListener>();
  private readonly loading = new Map<string, Promise<SessionRecord | null>>();
  private readonly pending = new Map<string, PendingClientRequest>();
  private readonly sweeper: NodeJS.Timeout;
  private unsubscribeNode: (() => Promise<void>) | null = null;
  private unsubscribeAll: (() => Promise<void>) | null = null;

  constructor(private readonly opts: SessionRegistryOptions) {
    this.sweeper = setInterval(() => this.sweep(), 30_000);
    this.sweeper.unref();
  }

  async start(): Promise<void> {
    if (this.opts.store.subscribeNode) {
      this.unsubscribeNode = await this.opts.store.subscribeNode(this.opts.nodeId, (m) => this.onRelayed(m));
      this.unsubscribeAll = await this.opts.store.subscribeNode(ALL_NODES, (m) => this.onRelayed(m));
    }
  }

  newSessionId(): string {
    return randomBytes(24).toString("base64url");
  }

  /** The session if it exists anywhere (loaded from the store when this node has never seen it). */
  async find(id: string): Promise<LocalSession | SessionRecord | null> {
    const local = this.sessions.get(id);
    if (local && !local.closed) {
      // Re-check existence (and refresh the TTL) at most every 2 s, so a DELETE on another node takes hold.
      if (Date.now() - local.lastTouchedStoreAt > 2000) {
        local.lastTouchedStoreAt = Date.now();
        if (!(await this.opts.store.touch(id))) {
          await this.dropLocal(local, false);
          return null;
        }
      }
      return local;
    }
    let p = this.loading.get(id);
    if (!p) {
      p = this.opts.store.get(id).finally(() => this.loading.delete(id));
      this.loading.set(id, p);
    }
    return await p;
  }

  attach(record: SessionRecord, principal: Principal): LocalSession {
    const existing = this.sessions.get(record.id);
    if (existing && !existing.closed) {
      existing.principal = principal;
      return existing;
    }
    const s = new LocalSession(record, principal);
    this.sessions.set(record.id, s);
    return s;
  }

  async create(record: SessionRecord, principal: Principal): Promise<LocalSession> {
    await this.opts.store.put(record);
    return this.attach(record, principal);
  }

  /** Counts a new session against its principal's cap (see `SessionStore.claimSlot`). */
  async claimSlot(record: SessionRecord, cap: number): Promise<boolean> {
    return await this.opts.store.claimSlot(record, cap);
  }

  async save(session: LocalSession): Promise<void> {
    await this.opts.store.put(session.record);
  }

  /** Ends a session everywhere: store entry deleted, upstream sessions terminated. */
  async terminate(session: LocalSession): Promise<void> {
    await this.opts.store.delete(session.id);
    await this.opts.store.releaseSlot(session.record).catch(() => {});
    await this.dropLocal(session, true);
  }

  /** Drops this node's state for a session (upstream sessions closed; terminated only when asked). */
  async dropLocal(session: LocalSession, terminateUpstreams: boolean): Promise<void> {
    if (session.closed) return;
    session.closed = true;
    this.sessions.delete(session.id);
    for (const r of session.inflight.values()) r.abort.abort();
    session.getStream?.close();
    const conns = [...session.conns.values()];
    session.conns.clear();
    await Promise.allSettled(conns.map(async (p) => (await p).close({ terminate: terminateUpstreams })));
    for (const [id, p] of this.pending) {
      if (p.sessionId === session.id) {
        clearTimeout(p.timer);
        this.pending.delete(id);
        p.reject(new ClientRequestError(-32603, "The session ended."));
      }
    }
  }

  /**
   * The session's own connection to an upstream: opened lazily on first use, resuming the upstream
   * session recorded in the store when another node opened it.
   */
  async connection(
    session: LocalSession,
    u: UpstreamSnapshot,
    full = false,
    log: Logger = this.opts.logger,
  ): Promise<UpstreamLink> {
    const existing = session.conns.get(u.id);
    if (existing) {
      const conn = await existing.catch(() => null);
      if (conn && !conn.isClosed && full && conn.kind === "http") {
        // Upgrade: the same upstream session on the SDK client, which listens on a GET stream.
        if (session.conns.get(u.id) === existing) session.conns.delete(u.id);
        session.record.upstreams[u.id] = conn.ref();
        void conn.close();
      } else if (conn && !conn.isClosed) {
        if (upstreamKey(conn.upstream) === upstreamKey(u)) return conn;
        // The upstream's configuration changed: reconnect fresh.
        session.conns.delete(u.id);
        void conn.close({ terminate: true });
        delete session.record.upstreams[u.id];
      } else if (session.conns.get(u.id) === existing) {
        session.conns.delete(u.id);
      }
    }
    const p = this.open(session, u, full, log);
    session.conns.set(u.id, p);
    p.catch(() => {
      if (session.conns.get(u.id) === p) session.conns.delete(u.id);
    });
    return await p;
  }

  private async open(
    session: LocalSession,
    u: UpstreamSnapshot,
    full: boolean,
    log: Logger,
  ): Promise<UpstreamLink> {
    const caps = relayCapabilities(session.record.clientCapabilities);
    const handlers = {
      onRequest: (method: string, params: Record<string, unknown> | undefined, signal: AbortSignal) =>
        this.requestClient(session, u.id, method, params, signal),
      onNotification: (method: string, params: Record<string, unknown> | undefined) =>
        this.onUpstreamNotification(session, u, method, params),
      onClose: () => {
        const cur = session.conns.get(u.id);
        if (cur)
          void cur
            .then((c) => c.isClosed && session.conns.get(u.id) === cur && session.conns.delete(u.id))
            .catch(() => {});
      },
    };
    const resume = session.record.upstreams[u.id];
    // OAuth upstreams: this session's principal's credential, never another's.
    const caller = { tenant: { id: session.record.tenantId }, principal: session.principal };
    if (!full && this.opts.upstreams.canUseHttpLink(u, caps) && (!resume || resume.era === "legacy")) {
      // Nothing to call back and no GET stream needed: the plain HTTP link (see http-session.ts).
      if (resume?.sessionId) return await this.opts.upstreams.openHttpLink(u, handlers, resume);
      return await this.recordLink(session, u, await this.opts.upstreams.openHttpLink(u, handlers), log);
    }
    let conn: UpstreamLink;
    if (resume && u.transport !== "stdio" && (resume.sessionId || resume.era === "modern")) {
      try {
        conn = await this.opts.upstreams.connect(u, caps, handlers, resume, caller);
        return conn;
      } catch (err) {
        log.info(
          { upstream: u.name, err: (err as Error).message },
          "could not resume upstream session; opening a new one",
        );
      }
    }
    conn = await this.opts.upstreams.connect(u, caps, handlers, undefined, caller);
    return await this.recordLink(session, u, conn, log);
  }

  /** A new upstream session: the session's log level applied, and its ref stored for other nodes. */
  private async recordLink(
    session: LocalSession,
    u: UpstreamSnapshot,
    link: UpstreamLink,
    log: Logger,
  ): Promise<UpstreamLink> {
    if (session.record.logLevel && link.serverCapabilities().logging) {
      await link.request("logging/setLevel", { level: session.record.logLevel }).catch(() => {});
    }
    session.record.upstreams[u.id] = link.ref();
    await this.opts.store.put(session.record).catch((err: unknown) => {
      log.warn({ err: (err as Error).message }, "could not record upstream session");
    });
    return link;
  }

  /**
   * Runs one upstream request on the session's connection; if a resumed upstream session turns
   * out to be gone, opens a fresh one and retries once.
   */
  async withConnection<T>(
    session: LocalSession,
    u: UpstreamSnapshot,
    fn: (conn: UpstreamLink) => Promise<T>,
    /** Needs the SDK client's GET stream (resource subscriptions). */
    full = false,
    /** The request's logger (its lines carry the request id). */
    log: Logger = this.opts.logger,
  ): Promise<T> {
    const conn = await this.connection(session, u, full, log);
    this.opts.upstreams.touch(conn);
    try {
      return await fn(conn);
    } catch (err) {
      if (isSessionGone(err, conn.resumed)) {
        session.conns.delete(u.id);
        delete session.record.upstreams[u.id];
        void conn.close();
        const fresh = await this.connection(session, u, full, log);
        return await fn(fresh);
      }
      throw err;
    }
  }

  private onUpstreamNotification(
    session: LocalSession,
    u: UpstreamSnapshot,
    method: string,
    params: Record<string, unknown> | undefined,
  ): void {
    // list_changed is handled by the catalog (and relayed when the caller's view changes).
    if (method.endsWith("/list_changed")) return;
    if (method === "notifications/message" || method === "notifications/resources/updated") {
      const p = { ...(params ?? {}) };
      if (
        method === "notifications/resources/updated" &&
        session.record.upstream === null &&
        typeof p.uri === "string"
      ) {
        p.uri = namespaceUri(u.name, p.uri);
      }
      session.relatedSend(u.id, { jsonrpc: "2.0", method, params: p });
      return;
    }
    if (method === "notifications/cancelled") return; // cancellations of relayed requests: the SDK aborts the handler
    session.relatedSend(u.id, { jsonrpc: "2.0", method, ...(params ? { params } : {}) });
  }

  /** Relays a server-to-client request to the agent on the related stream, with a gateway-side id. */
  requestClient(
    session: LocalSession,
    upstreamId: string,
    method: string,
    params: Record<string, unknown> | undefined,
    signal: AbortSignal,
  ): Promise<unknown> {
    // `node:random`: the node part routes an answer that lands elsewhere; the random part makes the
    // id unguessable (node ids are public on /healthz). Only the session it was sent to may answer.
    const id = `${this.opts.nodeId}:${randomBytes(16).toString("base64url")}`;
    return new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ClientRequestError(-32001, "The agent did not answer in time."));
      }, CLIENT_REQUEST_TIMEOUT_MS);
      timer.unref();
      this.pending.set(id, {
        resolve,
        reject,
        sessionId: session.id,
        principalId: session.principal.id,
        timer,
      });
      const sent = session.relatedSend(upstreamId, {
        jsonrpc: "2.0",
        id,
        method,
        ...(params ? { params } : {}),
      });
      if (!sent) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(new ClientRequestError(-32603, "The agent has no open stream to receive this request."));
        return;
      }
      signal.addEventListener(
        "abort",
        () => {
          if (!this.pending.has(id)) return;
          clearTimeout(timer);
          this.pending.delete(id);
          session.relatedSend(upstreamId, {
            jsonrpc: "2.0",
            method: "notifications/cancelled",
            params: { requestId: id, reason: "cancelled by the server" },
          });
          reject(new ClientRequestError(-32800, "Request cancelled."));
        },
        { once: true },
      );
    });
  }

  /**
   * A JSON-RPC response POSTed by an agent on `session`: it settles the relayed request of that
   * id only when the request was sent to this same session and principal, here or (routed through
   * the store) on the node that sent it. Anything else is ignored and counted.
   */
  async deliverResponse(session: LocalSession, message: ClientResponse): Promise<boolean> {
    const id = typeof message.id === "string" ? message.id : null;
    const from = { sessionId: session.id, principalId: session.principal.id };
    if (id && this.pending.has(id)) return this.settle(id, from, message);
    const node = id ? id.slice(0, Math.max(0, id.lastIndexOf(":"))) : "";
    if (id && node && node !== this.opts.nodeId && node !== ALL_NODES && this.opts.store.publishToNode) {
      await this.opts.store.publishToNode(node, { type: "client-response", ...from, message });
      return true;
    }
    this.opts.onStrayResponse?.();
    return false;
  }

  /**
   * An agent's notifications/cancelled: aborts the request here, or, when this node does not serve
   * it, tells every node (the request may run wherever the agent's POST landed).
   */
  async cancel(sessionId: string, requestId: string | number, fromRelay = false): Promise<void> {
    const r = this.sessions.get(sessionId)?.inflight.get(LocalSession.key(requestId));
    if (r) {
      r.abort.abort();
      return;
    }
    if (!fromRelay && this.opts.store.publishToNode) {
      await this.opts.store.publishToNode(ALL_NODES, {
        type: "cancel",
        sessionId,
        requestId,
        from: this.opts.nodeId,
      });
    }
  }

  private onRelayed(m: unknown): void {
    const msg = m as {
      type?: string;
      message?: ClientResponse;
      sessionId?: unknown;
      principalId?: unknown;
      requestId?: unknown;
      from?: unknown;
    };
    if (msg?.type === "cancel" && msg.from !== this.opts.nodeId && typeof msg.sessionId === "string") {
      if (typeof msg.requestId === "string" || typeof msg.requestId === "number") {
        void this.cancel(msg.sessionId, msg.requestId, true);
      }
      return;
    }
    if (msg?.type === "client-response" && msg.message && typeof msg.message.id === "string") {
      const from = {
        sessionId: typeof msg.sessionId === "string" ? msg.sessionId : "",
        principalId: typeof msg.principalId === "string" ? msg.principalId : "",
      };
      this.settle(msg.message.id, from, msg.message);
    }
  }

  /** Settles a pending relayed request with an agent's answer, if the answer came from its session. */
  private settle(
    id: string,
    from: { sessionId: string; principalId: string },
    message: { result?: unknown; error?: unknown },
  ): boolean {
    const p = this.pending.get(id);
    if (!p || p.sessionId !== from.sessionId || p.principalId !== from.principalId) {
      // Another session's (or tenant's) request, or none: never settled by this answer.
      this.opts.onStrayResponse?.();
      return false;
    }
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (message.error && typeof message.error === "object") {
      const e = message.error as { code?: unknown; message?: unknown; data?: unknown };
      p.reject(
        new ClientRequestError(
          typeof e.code === "number" ? e.code : -32603,
          typeof e.message === "string" ? e.message : "error",
          e.data,
        ),
      );
    } else p.resolve(message.result ?? {});
    return true;
  }

  private sweep(): void {
    const idle = this.opts.localIdleMs ?? 15 * 60_000;
    const now = Date.now();
    for (const s of this.sessions.values()) {
      if (s.inflight.size === 0 && (!s.getStream || s.getStream.isClosed) && now - s.lastUsedAt > idle) {
        void this.dropLocal(s, false);
      }
    }
  }

  /**
   * Ends the long-lived streams on this node (GET streams, `subscriptions/listen`) so that a
   * draining node is not held open by them; the clients reconnect to another node.
   */
  closeStreams(): void {
    this.endListeners();
    for (const s of this.sessions.values()) s.getStream?.close();
  }

  /** Listeners get the empty listen response (a graceful end) so they re-listen elsewhere. */
  private endListeners(): void {
    for (const l of this.listeners) {
      l.stream.send({
        jsonrpc: "2.0",
        id: l.id,
        result: { _meta: { "io.modelcontextprotocol/subscriptionId": l.id } },
      });
      l.stream.close();
    }
    this.listeners.clear();
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    await this.unsubscribeNode?.().catch(() => {});
    await this.unsubscribeAll?.().catch(() => {});
    this.endListeners();
    // Sessions live on in the store: another node resumes them. Only this node's state goes.
    await Promise.allSettled([...this.sessions.values()].map((s) => this.dropLocal(s, false)));
  }
}

/** The client capabilities the gateway declares upstream on an agent's behalf (what it can relay). */
export function relayCapabilities(client: Record<string, unknown>): ClientCapabilities {
  const caps: Record<string, unknown> = {};
  for (const k of ["sampling", "elicitation", "roots"]) if (client[k]) caps[k] = client[k];
  return caps as ClientCapabilities;
}

export { toAppError };
