import { AppError, ErrorCode, type UpstreamCreate, type UpstreamTestResult } from "@gatehouse/shared";
import {
  Client,
  SSEClientTransport,
  StreamableHTTPClientTransport,
  type Tool,
} from "@modelcontextprotocol/client";
import { Inject, Injectable } from "@nestjs/common";
import type { Caller } from "../common/caller.js";
import { TenantAccessService } from "../common/tenant-access.service.js";
import { API_CONFIG } from "../common/tokens.js";
import type { ApiConfig } from "../config/api.config.js";
import { oauthSettings } from "../oauth/oauth.config.js";

const CLIENT_INFO = { name: "gatehouse-console-test", version: "0.1.0" };
const MAX_PAGES = 10;

/**
 * "Test connection" before an upstream is saved: connects to it with the form's own transport,
 * headers and static auth, lists its tools once and forgets everything (nothing is stored).
 */
@Injectable()
export class UpstreamTestService {
  private readonly timeoutMs: number;

  constructor(
    @Inject(TenantAccessService) private readonly access: TenantAccessService,
    @Inject(API_CONFIG) config: ApiConfig,
  ) {
    this.timeoutMs = oauthSettings(config as unknown as Record<string, unknown>).httpTimeoutMs;
  }

  async test(caller: Caller, ref: string, body: UpstreamCreate): Promise<UpstreamTestResult> {
    await this.access.resolve(caller, ref, "write");
    if (body.transport === "stdio" || !body.url) {
      throw new AppError(
        ErrorCode.UNPROCESSABLE,
        "Only HTTP upstreams can be tested from here; stdio upstreams run on gateway nodes",
      );
    }
    const mode = body.auth?.mode ?? "none";
    if (mode !== "none" && mode !== "bearer" && mode !== "header") {
      throw new AppError(
        ErrorCode.UNPROCESSABLE,
        "OAuth upstreams are tested after saving, once an account is connected",
      );
    }
    const headers: Record<string, string> = { ...body.headers };
    if (body.auth?.mode === "bearer") headers.authorization = `Bearer ${body.auth.token}`;
    if (body.auth?.mode === "header") headers[body.auth.headerName] = body.auth.value;
    const url = new URL(body.url);
    const transport =
      body.transport === "sse"
        ? new SSEClientTransport(url, { requestInit: { headers } })
        : new StreamableHTTPClientTransport(url, { requestInit: { headers } });
    const client = new Client(CLIENT_INFO, { capabilities: {} });
    const started = Date.now();
    const signal = AbortSignal.timeout(this.timeoutMs);
    try {
      await Promise.race([
        client.connect(transport),
        new Promise((_, reject) =>
          signal.addEventListener("abort", () => reject(new Error(`no answer within ${this.timeoutMs} ms`))),
        ),
      ]);
      const tools: Tool[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < MAX_PAGES; page++) {
        const result = await client.listTools(cursor ? { cursor } : undefined, {
          timeout: this.timeoutMs,
          signal,
        });
        tools.push(...result.tools);
        cursor = result.nextCursor;
        if (!cursor) break;
      }
      return {
        ok: true,
        latencyMs: Date.now() - started,
        error: null,
        tools: tools.map((t) => ({ name: t.name, description: t.description ?? null })),
      };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      return { ok: false, latencyMs: Date.now() - started, error: message.slice(0, 500), tools: [] };
    } finally {
      await client.close().catch(() => {});
    }
  }
}
