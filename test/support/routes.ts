// The REST API's route table as the running Nest application registered it with Fastify: every
// route of every controller (and what Swagger adds), so tests that must cover "every route" are
// generated from it instead of from a list someone has to remember to extend.
import { randomBytes } from "node:crypto";
import { apiConfig, createApiApp } from "@gatehouse/api";

export interface ApiRoute {
  method: string;
  /** Fastify's pattern, e.g. `/v1/tenants/:tenant/upstreams/:name`. */
  path: string;
}

/**
 * Parses `fastify.printRoutes({ commonPrefix: false })`: a tree whose lines are
 * `<indent>├── <segment> (GET, HEAD)`, each segment appended to its parent's path.
 */
export function parsePrintedRoutes(tree: string): ApiRoute[] {
  const routes: ApiRoute[] = [];
  const pathAt: string[] = [];
  for (const line of tree.split("\n")) {
    const m = /^((?:│ {3}| {4})*)(?:├── |└── )(.*)$/.exec(line);
    if (!m) continue;
    const depth = (m[1] ?? "").length / 4;
    const node = /^(.*?) \(([A-Z, ]+)\)$/.exec(m[2] ?? "");
    const segment = node ? (node[1] ?? "") : (m[2] ?? "");
    const path = (depth > 0 ? (pathAt[depth - 1] ?? "") : "") + segment;
    pathAt[depth] = path;
    pathAt.length = depth + 1;
    if (node) for (const method of (node[2] ?? "").split(", ")) routes.push({ method, path });
  }
  return routes;
}

/**
 * Builds the API in this process (not listening; in-process bus and jobs) on `databaseUrl`, reads
 * its Fastify route table, and closes it. HEAD routes Fastify adds beside each GET are left out.
 * Every parsed route is checked back with `fastify.hasRoute`, so a change in the printed format
 * fails here rather than silently shrinking the table.
 */
export async function apiRouteTable(databaseUrl: string): Promise<ApiRoute[]> {
  const app = await createApiApp(
    apiConfig({
      ADMIN_TOKEN: randomBytes(24).toString("hex"),
      SECRETS_KEY: randomBytes(32).toString("hex"),
      DATABASE_URL: databaseUrl,
      LOG_LEVEL: "silent",
    }),
  );
  try {
    const fastify = app.getHttpAdapter().getInstance();
    const routes = parsePrintedRoutes(fastify.printRoutes({ commonPrefix: false }));
    for (const r of routes) {
      if (!fastify.hasRoute({ method: r.method as "GET", url: r.path })) {
        throw new Error(`route table parse error: ${r.method} ${r.path} is not a registered route`);
      }
    }
    if (!routes.some((r) => r.method === "GET" && r.path === "/v1/tenants/:tenant")) {
      throw new Error("route table parse error: GET /v1/tenants/:tenant is missing");
    }
    return routes.filter((r) => r.method !== "HEAD");
  } finally {
    await app.close();
  }
}
