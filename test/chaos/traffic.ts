// Steady agent traffic for the fault suite: SDK clients with long-lived sessions behind a load
// balancer, each calling tools in a loop, every call recorded with what the agent saw.
import { type Agent, connectAgent, errorData, firstText } from "../support/agent.js";
import { sleep } from "../support/processes.js";

export interface CallRecord {
  session: number;
  tool: string;
  text: string;
  start: number;
  end: number;
  ok: boolean;
  /** What the agent saw: the catalogue code, else the error message (shortened). */
  error?: string;
}

/**
 * A load balancer in front of the gateway nodes, as a `fetch`: round robin over the nodes whose
 * `/readyz` answered 200 at the last health check (every 250 ms), and, like nginx's
 * `proxy_next_upstream error`, the next node when a connection is refused (nothing was sent yet).
 */
export class LoadBalancer {
  private next = 0;
  private readonly healthy = new Set<string>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly origins: () => string[]) {
    for (const o of origins()) this.healthy.add(o);
    this.timer = setInterval(() => void this.check(), 250);
    this.timer.unref();
  }

  private async check(): Promise<void> {
    await Promise.all(
      this.origins().map(async (o) => {
        try {
          const res = await fetch(`${o}/readyz`, { signal: AbortSignal.timeout(1000) });
          if (res.status === 200) this.healthy.add(o);
          else this.healthy.delete(o);
        } catch {
          this.healthy.delete(o);
        }
      }),
    );
  }

  readonly fetch = async (url: string | URL, init?: RequestInit): Promise<Response> => {
    const all = this.origins();
    const pool = all.filter((o) => this.healthy.has(o));
    const order = pool.length > 0 ? pool : all;
    let lastErr: unknown;
    for (let i = 0; i < order.length; i++) {
      const origin = new URL(order[this.next++ % order.length]!);
      const target = new URL(url.toString());
      target.protocol = origin.protocol;
      target.host = origin.host;
      try {
        return await fetch(target, init);
      } catch (err) {
        lastErr = err;
        const code = (err as { cause?: { code?: string } }).cause?.code;
        if (code !== "ECONNREFUSED") throw err;
        this.healthy.delete(origin.origin);
      }
    }
    throw lastErr;
  };

  close(): void {
    clearInterval(this.timer);
  }
}

export interface TrafficOptions {
  url: string;
  token: string;
  lb: LoadBalancer;
  sessions: number;
  /** Pause between two calls of one session. */
  intervalMs: number;
  /** Tools called in turn, each `{text}` → echoes it. */
  tools: string[];
}

function describeError(err: unknown): string {
  const code = errorData(err)?.code;
  if (code) return code;
  const msg = (err as Error)?.message ?? String(err);
  if (/Session not found|HTTP 404|\b404\b/.test(msg)) return "SESSION_NOT_FOUND (404)";
  // An HTTP-level error the SDK transport threw with the gateway's JSON-RPC body in its message.
  const inBody = /"code":"([A-Z_]+)"/.exec(msg);
  if (inBody) return `${inBody[1]} (HTTP)`;
  return msg.replace(/\s+/g, " ").slice(0, 120);
}

/** N sessions calling tools in a loop until `stop()`; a session stops calling once it is lost (404). */
export class Traffic {
  readonly records: CallRecord[] = [];
  readonly lost = new Set<number>();
  private agents: Agent[] = [];
  private running = false;
  private loops: Promise<void>[] = [];
  private seq = 0;

  constructor(private readonly opts: TrafficOptions) {}

  async start(): Promise<void> {
    this.agents = await Promise.all(
      Array.from({ length: this.opts.sessions }, () =>
        connectAgent(this.opts.url, { token: this.opts.token, fetch: this.opts.lb.fetch }),
      ),
    );
    this.running = true;
    this.loops = this.agents.map((a, i) => this.loop(a, i));
  }

  private async loop(agent: Agent, session: number): Promise<void> {
    let turn = 0;
    while (this.running && !this.lost.has(session)) {
      const tool = this.opts.tools[turn++ % this.opts.tools.length]!;
      const text = `s${session}-${++this.seq}`;
      const start = Date.now();
      try {
        const result = await agent.client.callTool({ name: tool, arguments: { text } }, undefined, {
          timeout: 30_000,
        });
        const got = firstText(result);
        // Echo tools must echo this call's text; others (OAuth `whoami`) must just not be an error.
        const ok =
          !(result as { isError?: boolean }).isError &&
          (!tool.endsWith("_echo") || got.endsWith(`:echo:${text}`));
        this.records.push({ session, tool, text, start, end: Date.now(), ok, ...(ok ? {} : { error: got }) });
      } catch (err) {
        const error = describeError(err);
        this.records.push({ session, tool, text, start, end: Date.now(), ok: false, error });
        if (error.startsWith("SESSION_NOT_FOUND")) this.lost.add(session);
      }
      await sleep(this.opts.intervalMs);
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    await Promise.all(this.agents.map((a) => a.close()));
  }
}
