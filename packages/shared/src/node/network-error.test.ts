import { createServer } from "node:net";
import { describe, expect, test } from "vitest";
import { networkCauseOf } from "./network-error.js";

// Real failures from Node's fetch, not hand-built errors: the point is to dig through its wrapping.
async function fetchError(url: string, init?: RequestInit): Promise<unknown> {
  try {
    await fetch(url, init);
  } catch (err) {
    return err;
  }
  throw new Error(`${url} answered`);
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("networkCauseOf", () => {
  test("connection refused names the address and port", async () => {
    const port = await closedPort();
    const url = `http://127.0.0.1:${port}/mcp`;
    const err = await fetchError(url);
    expect((err as Error).message).toBe("fetch failed");
    expect(networkCauseOf(err, url)).toBe(`connection refused at 127.0.0.1:${port} (is the server running?)`);
    // However deeply an SDK wraps it.
    const wrapped = Object.assign(
      new Error("Version negotiation probe failed: fetch failed", { cause: err }),
      {
        code: "ERA_NEGOTIATION_FAILED",
      },
    );
    expect(networkCauseOf(wrapped, url)).toContain(`connection refused at 127.0.0.1:${port}`);
  });

  test("a port fetch blocks says so", async () => {
    const url = "http://127.0.0.1:1/mcp";
    expect(networkCauseOf(await fetchError(url), url)).toContain(
      'port 1 (a "bad port" in the Fetch standard)',
    );
  });

  test("a name that does not resolve says DNS and the host", async () => {
    const url = "http://gatehouse-does-not-exist.invalid/mcp";
    expect(networkCauseOf(await fetchError(url), url)).toMatch(
      /^DNS lookup of gatehouse-does-not-exist\.invalid failed \((ENOTFOUND|EAI_AGAIN)\)$/,
    );
  });

  test("TLS to a server that does not speak it is a TLS error", async () => {
    const server = createServer((socket) => socket.end("HTTP/1.1 400 Bad Request\r\n\r\n"));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const url = `https://127.0.0.1:${port}/mcp`;
      expect(networkCauseOf(await fetchError(url), url)).toMatch(
        /^TLS error with 127\.0\.0\.1:\d+: wrong version number \(ERR_SSL_WRONG_VERSION_NUMBER\)$/,
      );
    } finally {
      server.close();
    }
  });

  test("a timeout says so; errors without a network cause give undefined", async () => {
    const server = createServer(() => {}); // accepts, never answers
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const url = `http://127.0.0.1:${port}/mcp`;
      const err = await fetchError(url, { signal: AbortSignal.timeout(200) });
      expect(networkCauseOf(err, url)).toBe(`no answer from 127.0.0.1:${port} in time`);
    } finally {
      server.close();
    }
    expect(networkCauseOf(new Error("HTTP 500"))).toBeUndefined();
  });
});
