// A tiny REST client for provisioning through the API exactly as an operator would (api.md).

export interface ApiResponse<T = unknown> {
  status: number;
  body: T;
  headers: Headers;
}

export class ApiError extends Error {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    readonly body: unknown,
  ) {
    super(`${method} ${path} → ${status}: ${JSON.stringify(body)}`);
  }
}

export interface Tenant {
  id: string;
  slug: string;
  name: string;
  gatewayUrl: string;
}

export interface CreatedKey {
  id: string;
  name: string;
  prefix: string;
  key: string;
}

export interface UpstreamInput {
  name: string;
  url?: string;
  transport?: "streamable-http" | "sse" | "stdio";
  command?: string;
  args?: string[];
  env?: Record<string, string>;
  toolPrefix?: string;
  headers?: Record<string, string>;
  enabled?: boolean;
  description?: string;
}

export interface PolicyRule {
  id: string;
  effect: "allow" | "deny";
  principals?: string[];
  upstreams?: string[];
  tools?: string[];
  when?: string;
}

export interface PolicyDocument {
  defaultEffect: "allow" | "deny";
  rules: PolicyRule[];
}

export class AdminClient {
  constructor(
    readonly baseUrl: string,
    readonly token: string,
  ) {}

  async request<T = unknown>(method: string, path: string, body?: unknown): Promise<ApiResponse<T>> {
    const res = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {}
    return { status: res.status, body: parsed as T, headers: res.headers };
  }

  /** Like `request`, but throws unless the status is 2xx. */
  async ok<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.request<T>(method, path, body);
    if (res.status < 200 || res.status >= 300) throw new ApiError(method, path, res.status, res.body);
    return res.body;
  }

  createTenant(slug: string, settings?: Record<string, unknown>): Promise<Tenant> {
    return this.ok<Tenant>("POST", "/v1/tenants", {
      slug,
      name: `Tenant ${slug}`,
      ...(settings ? { settings } : {}),
    });
  }

  patchTenant(tenant: string, patch: Record<string, unknown>): Promise<Tenant> {
    return this.ok<Tenant>("PATCH", `/v1/tenants/${tenant}`, patch);
  }

  createUpstream(tenant: string, input: UpstreamInput): Promise<Record<string, unknown>> {
    return this.ok("POST", `/v1/tenants/${tenant}/upstreams`, { transport: "streamable-http", ...input });
  }

  patchUpstream(
    tenant: string,
    name: string,
    patch: Partial<UpstreamInput>,
  ): Promise<Record<string, unknown>> {
    return this.ok("PATCH", `/v1/tenants/${tenant}/upstreams/${name}`, patch);
  }

  deleteUpstream(tenant: string, name: string): Promise<unknown> {
    return this.ok("DELETE", `/v1/tenants/${tenant}/upstreams/${name}`);
  }

  createKey(
    tenant: string,
    input: { name: string; agent?: string; roles?: string[]; expiresAt?: string } = { name: "test" },
  ): Promise<CreatedKey> {
    return this.ok<CreatedKey>("POST", `/v1/tenants/${tenant}/api-keys`, input);
  }

  revokeKey(tenant: string, id: string): Promise<unknown> {
    return this.ok("DELETE", `/v1/tenants/${tenant}/api-keys/${id}`);
  }

  putPolicy(tenant: string, doc: PolicyDocument): Promise<unknown> {
    return this.ok("PUT", `/v1/tenants/${tenant}/policy`, doc);
  }
}

/** A policy that lets every principal (the anonymous one included) call everything. */
export const ALLOW_ALL: PolicyDocument = {
  defaultEffect: "deny",
  rules: [{ id: "allow-all", effect: "allow", principals: ["*"] }],
};
