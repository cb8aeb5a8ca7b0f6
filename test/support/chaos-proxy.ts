// A TCP proxy in front of an upstream that can misbehave on demand: pass traffic, hang (accept and
// read, never answer), or answer late (every byte back delayed by `slowMs`).
import { connect, createServer, type Server, type Socket } from "node:net";

export type ProxyMode = "pass" | "hang" | "slow";

export class ChaosProxy {
  mode: ProxyMode = "pass";
  slowMs = 5000;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  /** `http://127.0.0.1:<port>/mcp` */
  get url(): string {
    return `http://127.0.0.1:${this.port}/mcp`;
  }

  static async start(targetPort: number): Promise<ChaosProxy> {
    let proxy: ChaosProxy | undefined;
    const server = createServer((client) => proxy?.pipe(client, targetPort));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    proxy = new ChaosProxy(server, typeof address === "object" && address ? address.port : 0);
    return proxy;
  }

  private pipe(client: Socket, targetPort: number): void {
    const upstream = connect(targetPort, "127.0.0.1");
    this.sockets.add(client);
    this.sockets.add(upstream);
    // Bytes back keep their order across mode changes: each is due no earlier than the previous one.
    let lastDue = 0;
    client.on("data", (chunk) => {
      if (this.mode !== "hang") upstream.write(chunk);
    });
    upstream.on("data", (chunk) => {
      if (this.mode === "hang") return;
      const due = Math.max(Date.now() + (this.mode === "slow" ? this.slowMs : 0), lastDue);
      lastDue = due;
      const wait = due - Date.now();
      if (wait <= 0) client.write(chunk);
      else setTimeout(() => !client.destroyed && client.write(chunk), wait);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on("close", end);
    upstream.on("close", () => setTimeout(end, Math.max(0, lastDue - Date.now())));
    client.on("error", end);
    upstream.on("error", end);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
