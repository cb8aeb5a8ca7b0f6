// Node's network failures arrive wrapped: fetch says "fetch failed" with undici's error as `cause`,
// whose `cause` is the socket's error (an AggregateError when both IPv6 and IPv4 were tried), and
// the MCP SDK wraps all of it once more. The one useful fact is at the bottom of that chain.

type WithCode = Error & {
  code?: unknown;
  address?: unknown;
  port?: unknown;
  hostname?: unknown;
  /** OpenSSL's short reason ("wrong version number"); its message is a multi-line dump. */
  reason?: unknown;
};

const DNS = new Set(["ENOTFOUND", "EAI_AGAIN", "EAI_FAIL", "EAI_NONAME", "EAI_NODATA"]);
const TIMEOUT = new Set(["ETIMEDOUT", "UND_ERR_CONNECT_TIMEOUT", "ESOCKETTIMEDOUT"]);
const NO_ANSWER = new Set(["UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT"]);
const CLOSED = new Set(["ECONNRESET", "EPIPE", "UND_ERR_SOCKET", "UND_ERR_CLOSED"]);
const NO_ROUTE = new Set(["EHOSTUNREACH", "ENETUNREACH", "EHOSTDOWN", "ENETDOWN", "EADDRNOTAVAIL"]);
const TLS = /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|HOSTNAME_MISMATCH|^EPROTO$/;

const SYSTEM_CODE =
  /^(E[A-Z]{2,}|EAI_[A-Z]+|UND_ERR_[A-Z_]+|ERR_(TLS|SSL)_[A-Z_]+|[A-Z_]*CERT[A-Z_]*|UNABLE_TO_[A-Z_]+|HOSTNAME_MISMATCH)$/;

/** Every error in `err`'s `cause` chain and AggregateError lists, outermost first (bounded). */
function chain(err: unknown): WithCode[] {
  const out: WithCode[] = [];
  const queue: unknown[] = [err];
  while (queue.length > 0 && out.length < 16) {
    const e = queue.shift();
    if (!(e instanceof Error) || out.includes(e as WithCode)) continue;
    out.push(e as WithCode);
    if (e instanceof AggregateError) queue.push(...e.errors);
    if ("cause" in e) queue.push(e.cause);
  }
  return out;
}

function hostPort(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    const u = new URL(url);
    const port = u.port || (u.protocol === "https:" ? "443" : u.protocol === "http:" ? "80" : "");
    return port ? `${u.hostname}:${port}` : u.hostname;
  } catch {
    return undefined;
  }
}

/**
 * What a failed connection to `url` comes down to, in words a person can act on: "connection
 * refused at 127.0.0.1:3799", "DNS lookup of x.invalid failed (ENOTFOUND)", "TLS error …", "timed
 * out". Undefined when the error holds no network cause (an HTTP status, a JSON-RPC error, …).
 */
export function networkCauseOf(err: unknown, url?: string): string | undefined {
  const errors = chain(err);
  // System and undici codes only: SDK wrappers carry codes of their own (ERA_NEGOTIATION_FAILED).
  const coded = errors.find((e) => typeof e.code === "string" && SYSTEM_CODE.test(e.code));
  const where = (e?: WithCode) =>
    e && typeof e.address === "string" && typeof e.port === "number"
      ? `${e.address.includes(":") ? `[${e.address}]` : e.address}:${e.port}`
      : (hostPort(url) ?? "the upstream");
  if (coded) {
    const code = coded.code as string;
    const detail = typeof coded.reason === "string" ? coded.reason : coded.message.split("\n")[0];
    if (code === "ECONNREFUSED") return `connection refused at ${where(coded)} (is the server running?)`;
    if (DNS.has(code)) {
      const host = typeof coded.hostname === "string" ? coded.hostname : hostPort(url)?.replace(/:\d+$/, "");
      return `DNS lookup of ${host ?? "the upstream's host"} failed (${code})`;
    }
    if (TIMEOUT.has(code)) return `connecting to ${where(coded)} timed out (${code})`;
    if (NO_ANSWER.has(code))
      return `${where(coded)} accepted the connection but did not answer in time (${code})`;
    if (CLOSED.has(code)) return `${where(coded)} closed the connection (${code})`;
    if (NO_ROUTE.has(code)) return `no route to ${where(coded)} (${code})`;
    if (TLS.test(code)) return `TLS error with ${where(coded)}: ${detail} (${code})`;
    return `${detail} (${code})`;
  }
  // The Fetch standard's blocked ports (1, 22, 25, 6000, …): fetch fails before any connection.
  if (errors.some((e) => e.message === "bad port")) {
    return `fetch refuses to connect to port ${hostPort(url)?.split(":").pop() ?? "?"} (a "bad port" in the Fetch standard); serve the upstream on another port`;
  }
  const timeout = errors.find((e) => e.name === "TimeoutError");
  if (timeout) return `no answer from ${hostPort(url) ?? "the upstream"} in time`;
  return undefined;
}
