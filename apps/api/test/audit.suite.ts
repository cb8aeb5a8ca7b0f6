import { randomBytes } from "node:crypto";
import type { Prisma } from "@gatehouse/db";
import { SECRET_MASK } from "@gatehouse/shared";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { AuditRetentionJob, AuditRetentionService } from "../src/audit/audit-retention.js";
import type { JobRunner } from "../src/jobs/job.types.js";
import { JOB_RUNNER } from "../src/jobs/jobs.tokens.js";
import type { Harness } from "./harness.js";

// The audit log and admin-change events, run once per mode (audit.postgres.test.ts,
// audit.embedded.test.ts).
export function auditSuite(mode: string, start: () => Promise<Harness>): void {
  describe(`audit on ${mode}`, () => {
    let h: Harness;
    let seq = 0;
    const unique = (base: string) => `${base}-${++seq}-${randomBytes(2).toString("hex")}`;
    const DAY = 24 * 3600_000;

    /** The UTC day(s) the app booted on: its first retention run is named after that day. */
    const bootDays = new Set<string>();
    const utcDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

    beforeAll(async () => {
      bootDays.add(utcDay(Date.now()));
      h = await start();
      bootDays.add(utcDay(Date.now()));
    });
    afterAll(async () => {
      await h?.close();
    });

    async function createTenant(settings?: object) {
      const slug = unique("audit");
      const res = await h.request("POST", "/v1/tenants", {
        body: { slug, name: `Tenant ${slug}`, settings },
      });
      expect(res.status).toBe(201);
      return res.body as { id: string; slug: string };
    }

    async function adminEvents(tenantId: string) {
      return h.prisma.auditEvent.findMany({
        where: { tenantId, kind: "admin" },
        orderBy: [{ at: "asc" }, { id: "asc" }],
      });
    }

    // biome-ignore lint/suspicious/noExplicitAny: tests read JSON loosely
    type Details = Record<string, any>;

    describe("admin changes", () => {
      test("one event per write of every kind, with who, what, before/after and the request id; no secret anywhere", async () => {
        const t = await createTenant();
        const secrets: string[] = [];
        const secret = (label: string) => {
          const s = `${label}-${randomBytes(12).toString("hex")}`;
          secrets.push(s);
          return s;
        };
        const ok = (res: { status: number; body: unknown }, status: number) => {
          expect(res.status, JSON.stringify(res.body)).toBe(status);
          return res.body as Details;
        };
        const base = `/v1/tenants/${t.slug}`;

        ok(
          await h.request("PATCH", base, { body: { name: "Renamed", settings: { captureArguments: true } } }),
          200,
        );

        const headerSecret = secret("hdr");
        const bearer = secret("bearer");
        const upstream = ok(
          await h.request("POST", `${base}/upstreams`, {
            body: {
              name: "github",
              transport: "streamable-http",
              url: "https://mcp.example/mcp",
              headers: { "X-Tenant-Secret": headerSecret },
              auth: { mode: "bearer", token: bearer },
            },
          }),
          201,
        );
        const bearer2 = secret("bearer2");
        ok(
          await h.request("PATCH", `${base}/upstreams/github`, {
            body: { description: "code", auth: { mode: "bearer", token: bearer2 } },
          }),
          200,
        );

        const key = ok(
          await h.request("POST", `${base}/api-keys`, { body: { name: "ci", agent: "scout" } }),
          201,
        );
        secrets.push(key.key);
        ok(await h.request("DELETE", `${base}/api-keys/${key.id}`), 204);

        const idp = ok(
          await h.request("POST", `${base}/identity-providers`, {
            body: { name: "okta", issuer: "https://idp.example", jwksUri: "https://idp.example/jwks" },
          }),
          201,
        );
        ok(
          await h.request("PATCH", `${base}/identity-providers/${idp.id}`, { body: { audiences: ["a"] } }),
          200,
        );
        ok(await h.request("DELETE", `${base}/identity-providers/${idp.id}`), 204);

        ok(await h.request("PUT", `${base}/policy`, { body: { defaultEffect: "allow", rules: [] } }), 200);
        // A read over POST and a refused write record nothing.
        ok(
          await h.request("POST", `${base}/policy/simulate`, {
            body: { principal: { agent: "scout" }, upstream: "github", tool: "x" },
          }),
          200,
        );
        expect((await h.request("POST", `${base}/upstreams`, { body: { name: "BAD NAME" } })).status).toBe(
          400,
        );

        // A tenant token's writes name the token.
        const minted = ok(
          await h.request("POST", `${base}/tokens`, { body: { name: "ops-bot", role: "admin" } }),
          201,
        );
        secrets.push(minted.token);
        ok(
          await h.request("POST", `${base}/upstreams`, {
            token: minted.token,
            body: { name: "fs", transport: "stdio", command: "mcp-fs", env: { FS_TOKEN: secret("env") } },
          }),
          201,
        );
        ok(await h.request("DELETE", `${base}/upstreams/fs`, { token: minted.token }), 204);
        ok(await h.request("DELETE", `${base}/upstreams/github`), 204);
        ok(await h.request("DELETE", `${base}/tokens/${minted.id}`), 204);

        const events = await adminEvents(t.id);
        const actions = events.map((e) => (e.details as Details).action);
        expect(actions).toEqual([
          "tenant.create",
          "tenant.update",
          "upstream.create",
          "upstream.update",
          "api-key.create",
          "api-key.delete",
          "identity-provider.create",
          "identity-provider.update",
          "identity-provider.delete",
          "policy.update",
          "token.create",
          "upstream.create",
          "upstream.delete",
          "upstream.delete",
          "token.delete",
        ]);

        // No plaintext secret, and no stored (sealed or hashed) form of one, in any event.
        const stored = await h.prisma.upstream.findMany({ where: { tenantId: t.id } });
        const json = JSON.stringify(events);
        for (const s of secrets) expect(json).not.toContain(s);
        for (const u of stored) if (u.headersSealed) expect(json).not.toContain(u.headersSealed);
        expect(json).not.toMatch(/Sealed"|"hash"/);

        for (const e of events) {
          expect(e.kind).toBe("admin");
          expect(e.requestId).toMatch(/^[0-9a-f-]{36}$/);
          expect(e.outcome).toBe("ok");
          expect(typeof e.latencyMs).toBe("number");
        }
        const byAction = (action: string) => events.filter((e) => (e.details as Details).action === action);

        const created = byAction("tenant.create")[0]!;
        expect(created.actor).toBe("platform-admin");
        expect((created.details as Details).actor).toEqual({ kind: "platform" });
        expect((created.details as Details).before).toBeNull();
        expect((created.details as Details).after).toMatchObject({ id: t.id, slug: t.slug });

        const renamed = byAction("tenant.update")[0]!.details as Details;
        expect(renamed.before.name).toBe(`Tenant ${t.slug}`);
        expect(renamed.after.name).toBe("Renamed");
        expect(renamed.after.settings.captureArguments).toBe(true);

        const upCreate = byAction("upstream.create")[0]!;
        expect(upCreate.upstream).toBe("github");
        expect((upCreate.details as Details).target).toMatchObject({
          type: "upstream",
          id: upstream.id,
          name: "github",
        });
        expect((upCreate.details as Details).after.headers).toEqual({ "X-Tenant-Secret": SECRET_MASK });

        const upUpdate = byAction("upstream.update")[0]!.details as Details;
        expect(upUpdate.before.description).toBeNull();
        expect(upUpdate.after.description).toBe("code");
        expect(upUpdate.before.auth).toEqual({ mode: "bearer", token: SECRET_MASK });
        expect(upUpdate.after.auth).toEqual({ mode: "bearer", token: SECRET_MASK });

        const keyCreate = byAction("api-key.create")[0]!.details as Details;
        expect(keyCreate.after.key).toBe(SECRET_MASK);
        expect(keyCreate.after.agent).toBe("scout");
        const keyDelete = byAction("api-key.delete")[0]!.details as Details;
        expect(keyDelete.before).toMatchObject({ id: key.id, name: "ci" });
        expect(keyDelete.after).toBeNull();
        expect(keyDelete.target).toMatchObject({ type: "api-key", id: key.id, ref: key.id });

        const idpUpdate = byAction("identity-provider.update")[0]!.details as Details;
        expect(idpUpdate.before.audiences).toEqual([]);
        expect(idpUpdate.after.audiences).toEqual(["a"]);

        const policy = byAction("policy.update")[0]!.details as Details;
        expect(policy.before.version).toBe(0);
        expect(policy.after).toMatchObject({ version: 1, document: { defaultEffect: "allow" } });

        expect((byAction("token.create")[0]!.details as Details).after.token).toBe(SECRET_MASK);

        const [byToken, byPlatform] = byAction("upstream.delete");
        expect(byToken!.actor).toBe(`token:${minted.id}`);
        expect((byToken!.details as Details).actor).toEqual({
          kind: "token",
          id: minted.id,
          name: "ops-bot",
          role: "admin",
        });
        expect(byToken!.upstream).toBe("fs");
        expect((byToken!.details as Details).before.env).toEqual({ FS_TOKEN: SECRET_MASK });
        expect(byPlatform!.actor).toBe("platform-admin");
        expect(byPlatform!.upstream).toBe("github");

        // The API shows the same events, newest first, with the action on top.
        const listed = await h.request("GET", `${base}/audit?kind=admin&limit=200`);
        expect(listed.status).toBe(200);
        expect(listed.body.items.map((i: Details) => i.action)).toEqual([...actions].reverse());
        expect(JSON.stringify(listed.body)).not.toContain(bearer);
        const upstreamOnly = await h.request("GET", `${base}/audit?upstream=github&kind=admin`);
        expect(upstreamOnly.body.items.map((i: Details) => i.action)).toEqual([
          "upstream.delete",
          "upstream.update",
          "upstream.create",
        ]);
        const byActionQuery = await h.request("GET", `${base}/audit?action=api-key.create`);
        expect(byActionQuery.body.items).toHaveLength(1);
        const byActor = await h.request("GET", `${base}/audit?actor=token:${minted.id}`);
        expect(byActor.body.items.map((i: Details) => i.action)).toEqual([
          "upstream.delete",
          "upstream.create",
        ]);
      });

      test("events the OAuth workers write (`details.event`) show and filter as actions too", async () => {
        const t = await createTenant();
        await h.prisma.auditEvent.create({
          data: {
            tenantId: t.id,
            kind: "admin",
            actor: "worker",
            upstream: "crm",
            outcome: "needs_reconnect",
            details: { event: "upstream_credential.needs_reconnect" },
          },
        });
        const res = await h.request(
          "GET",
          `/v1/tenants/${t.slug}/audit?action=upstream_credential.needs_reconnect`,
        );
        expect(res.status).toBe(200);
        expect(res.body.items).toHaveLength(1);
        expect(res.body.items[0]).toMatchObject({
          action: "upstream_credential.needs_reconnect",
          actor: "worker",
        });
      });

      test("deleting a tenant takes its audit with it (events cascade), and the delete does not fail", async () => {
        const t = await createTenant();
        expect(await h.prisma.auditEvent.count({ where: { tenantId: t.id } })).toBe(1);
        expect((await h.request("DELETE", `/v1/tenants/${t.slug}`)).status).toBe(204);
        expect(await h.prisma.auditEvent.count({ where: { tenantId: t.id } })).toBe(0);
      });
    });

    describe("GET /v1/tenants/{tenant}/audit", () => {
      let t: { id: string; slug: string };
      const now = Date.now();
      const rows: Prisma.AuditEventCreateManyInput[] = [];

      beforeAll(async () => {
        t = await createTenant();
        const at = (minutesAgo: number) => new Date(now - minutesAgo * 60_000);
        const call = (minutesAgo: number, fields: Partial<Prisma.AuditEventCreateManyInput>) =>
          rows.push({
            tenantId: t.id,
            kind: "tool_call",
            at: at(minutesAgo),
            actor: "key:k1",
            agent: "scout",
            upstream: "github",
            tool: "get_issue",
            decision: "allow",
            ruleId: "r1",
            outcome: "ok",
            latencyMs: 12,
            requestId: `req-${rows.length}`,
            details: { argsSize: 2, argsHash: "h", upstreamLatencyMs: 10 },
            ...fields,
          });
        call(60, {});
        call(50, { agent: "builder", actor: "key:k2" });
        call(40, {
          upstream: "postgres",
          tool: "drop_table",
          decision: "deny",
          ruleId: "no-drop",
          outcome: "DENIED_BY_POLICY",
        });
        call(30, { tool: "list_repos", outcome: "tool_error" });
        // Two at the same instant: the page boundary falls between them below.
        call(20, { tool: "search" });
        call(20, { tool: "search" });
        call(10, { agent: "builder" });
        call(60 * 24 * 3, { tool: "old" });
        await h.prisma.auditEvent.createMany({ data: rows });
      });

      const list = (query: string, token?: string) =>
        h.request("GET", `/v1/tenants/${t.slug}/audit?kind=tool_call&${query}`, token ? { token } : {});

      test("newest first, paginated with a cursor, no item lost or repeated", async () => {
        const seen: Details[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const res = await list(`limit=3${cursor ? `&cursor=${cursor}` : ""}`);
          expect(res.status).toBe(200);
          expect(res.body.items.length).toBeLessThanOrEqual(3);
          seen.push(...res.body.items);
          cursor = res.body.nextCursor;
          pages++;
        } while (cursor);
        expect(pages).toBe(3);
        expect(seen).toHaveLength(rows.length);
        expect(new Set(seen.map((e) => e.id)).size).toBe(rows.length);
        const times = seen.map((e) => Date.parse(e.at));
        expect(times).toEqual([...times].sort((a, b) => b - a));
        expect(seen[0]).toMatchObject({
          kind: "tool_call",
          action: null,
          agent: "builder",
          upstream: "github",
          decision: "allow",
          ruleId: "r1",
          outcome: "ok",
          latencyMs: 12,
          details: { argsSize: 2, argsHash: "h", upstreamLatencyMs: 10 },
        });
      });

      test("every filter narrows to what it names, and they combine", async () => {
        const count = async (query: string) => {
          const res = await list(`limit=200&${query}`);
          expect(res.status, JSON.stringify(res.body)).toBe(200);
          return res.body.items as Details[];
        };
        expect(await count("agent=builder")).toHaveLength(2);
        expect(await count("actor=key:k2")).toHaveLength(1);
        expect((await count("upstream=postgres"))[0]).toMatchObject({ tool: "drop_table" });
        expect(await count("tool=search")).toHaveLength(2);
        expect(await count("decision=deny")).toHaveLength(1);
        expect(await count("outcome=tool_error")).toHaveLength(1);
        expect(await count("upstream=github&agent=builder")).toHaveLength(2);
        expect(await count("agent=nobody")).toHaveLength(0);
        const since = new Date(now - 45 * 60_000).toISOString();
        const until = new Date(now - 15 * 60_000).toISOString();
        expect((await count(`since=${since}&until=${until}`)).map((e) => e.tool)).toEqual([
          "search",
          "search",
          "list_repos",
          "drop_table",
        ]);
        const day = new Date(now - DAY).toISOString().slice(0, 10);
        expect((await count(`until=${day}`)).map((e) => e.tool)).toEqual(["old"]);
        // An empty value means no filter.
        expect(await count("agent=")).toHaveLength(rows.length);
      });

      test("bad filters: 400 naming each bad field", async () => {
        const bad = await list("since=yesterday&until=2026-13-45&decision=maybe&limit=0&colour=red");
        expect(bad.status).toBe(400);
        expect(bad.body.error.code).toBe("VALIDATION_FAILED");
        const fields = bad.body.error.details.map((d: { path: string }) => d.path).sort();
        expect(fields).toEqual(["colour", "decision", "limit", "since", "until"]);
        expect(bad.body.error.message).toContain("since");
        const reversed = await list("since=2030-01-02&until=2030-01-01");
        expect(reversed.status).toBe(400);
        expect(reversed.body.error.details).toEqual([{ path: "until", message: "Must be after since" }]);
        const cursor = await list("cursor=abc");
        expect(cursor.status).toBe(400);
        expect(cursor.body.error.details[0].path).toBe("cursor");
      });

      test("tenant tokens read only their own tenant's audit; other tenants look absent", async () => {
        const other = await createTenant();
        const viewer = await h.request("POST", `/v1/tenants/${t.slug}/tokens`, {
          body: { name: "auditor", role: "viewer" },
        });
        const otherAdmin = await h.request("POST", `/v1/tenants/${other.slug}/tokens`, {
          body: { name: "intruder", role: "owner" },
        });
        const own = await list("limit=1", viewer.body.token);
        expect(own.status).toBe(200);
        expect(own.body.items).toHaveLength(1);
        for (const ref of [t.slug, t.id]) {
          const res = await h.request("GET", `/v1/tenants/${ref}/audit`, { token: otherAdmin.body.token });
          expect(res.status).toBe(404);
          expect(res.body.error.code).toBe("NOT_FOUND");
        }
        const theirs = await h.request("GET", `/v1/tenants/${other.slug}/audit`, {
          token: otherAdmin.body.token,
        });
        expect(theirs.status).toBe(200);
        expect(theirs.body.items.every((e: Details) => e.kind === "admin")).toBe(true);
        expect((await h.request("GET", `/v1/tenants/${t.slug}/audit`, { token: null })).status).toBe(401);
      });

      test("documented in OpenAPI with its filters; counted in /metrics by route pattern", async () => {
        const doc = (await h.request("GET", "/docs-json", { token: null })).body;
        const op = doc.paths["/v1/tenants/{tenant}/audit"].get;
        const params = op.parameters.map((p: { name: string }) => p.name);
        for (const name of [
          "tenant",
          "limit",
          "cursor",
          "agent",
          "upstream",
          "tool",
          "decision",
          "since",
          "until",
          "kind",
          "outcome",
        ]) {
          expect(params).toContain(name);
        }
        expect(
          op.responses["200"].content["application/json"].schema.properties.items.items.properties.kind.enum,
        ).toEqual(["tool_call", "admin"]);
        const metrics = (await h.request("GET", "/metrics", { token: null })).body as string;
        expect(metrics).toMatch(
          /gatehouse_api_http_request_duration_seconds_count\{method="GET",route="\/v1\/tenants\/:tenant\/audit",status="200"\} \d+/,
        );
        expect(metrics).toMatch(/route="\/v1\/tenants\/:tenant\/audit",status="400"/);
        expect(metrics).not.toContain(t.slug);
      });
    });

    describe("retention", () => {
      test("deletes events older than each tenant's retention (default 30 days), nothing newer", async () => {
        const short = await createTenant({ auditRetentionDays: 7 });
        const normal = await createTenant();
        const now = Date.now();
        const seed = (tenantId: string) =>
          [3, 10, 40].map((days) => ({
            tenantId,
            kind: "tool_call" as const,
            at: new Date(now - days * DAY),
            tool: `t${days}`,
          }));
        await h.prisma.auditEvent.createMany({ data: [...seed(short.id), ...seed(normal.id)] });

        const result = await h.app.get(AuditRetentionService).purge();
        expect(result.deleted).toBeGreaterThanOrEqual(3);
        const left = async (tenantId: string) =>
          (await h.prisma.auditEvent.findMany({ where: { tenantId }, orderBy: { at: "desc" } })).map(
            (e) => e.tool ?? e.kind,
          );
        expect(await left(short.id)).toEqual(["admin", "t3"]);
        expect(await left(normal.id)).toEqual(["admin", "t3", "t10"]);
      });

      test("runs as a job on the app's job runner", async () => {
        const t = await createTenant({ auditRetentionDays: 1 });
        await h.prisma.auditEvent.create({
          data: { tenantId: t.id, kind: "tool_call", at: new Date(Date.now() - 2 * DAY), tool: "stale" },
        });
        const jobs = h.app.get<symbol, JobRunner>(JOB_RUNNER);
        const jobId = `test-${randomBytes(4).toString("hex")}`;
        await jobs.enqueue(AuditRetentionJob, {}, { jobId });
        const deadline = Date.now() + 10_000;
        let info = await jobs.get(AuditRetentionJob, jobId);
        while (info?.state !== "completed" && info?.state !== "failed" && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 50));
          info = await jobs.get(AuditRetentionJob, jobId);
        }
        expect(info?.state, info?.error ?? "").toBe("completed");
        expect(await h.prisma.auditEvent.count({ where: { tenantId: t.id, tool: "stale" } })).toBe(0);
        // The boot day's run was queued at boot (its id is the date). Not "today's": the suite may
        // run past UTC midnight after the app booted.
        const queued = await Promise.all(
          [...bootDays].map((day) => jobs.get(AuditRetentionJob, `day-${day}`)),
        );
        expect(queued.some((j) => j !== null)).toBe(true);
      });
    });
  });
}
