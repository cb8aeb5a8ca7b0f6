import { describe, expect, it } from "vitest";
import { AppError } from "../errors.js";
import type { Principal } from "../principal.js";
import { compilePolicy, POLICY_MATCHES_MAX_ARG_LENGTH, type PolicyInput } from "./policy.engine.js";
import { DEFAULT_POLICY, type PolicyDocument, PolicyDocumentSchema } from "./policy.schema.js";

const apiKey = (over: Partial<Principal> = {}): Principal => ({
  kind: "api_key",
  id: "key:k_123",
  keyId: "k_123",
  agent: null,
  roles: [],
  claims: {},
  ...over,
});
const jwt = (over: Partial<Principal> = {}): Principal => ({
  kind: "jwt",
  id: "sub:idp1:alice",
  subject: "alice",
  agent: null,
  roles: [],
  claims: {},
  ...over,
});
const anonymous: Principal = { kind: "anonymous", id: "anonymous", agent: null, roles: [], claims: {} };

/** The example of api.md "Policy document". */
const apiMdExample = {
  defaultEffect: "deny",
  rules: [
    {
      id: "researchers-read",
      effect: "allow",
      principals: ["role:research", "agent:scout"],
      upstreams: ["github"],
      tools: ["get_*", "list_*", "search_*"],
    },
    { id: "no-destructive-sql", effect: "deny", upstreams: ["postgres"], tools: ["drop_*", "truncate_*"] },
    {
      id: "admins-write-fs",
      effect: "allow",
      upstreams: ["fs"],
      tools: ["write_*"],
      when: "'admin' in claims.groups && !args.path.startsWith('/etc')",
    },
  ],
};

function validationIssues(doc: unknown): { path: string; message: string }[] {
  try {
    compilePolicy(doc);
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    const e = err as AppError;
    expect(e.code).toBe("VALIDATION_FAILED");
    expect(e.httpStatus).toBe(400);
    return e.details as { path: string; message: string }[];
  }
  throw new Error("expected the policy to be rejected");
}

describe("policy document schema", () => {
  it("accepts api.md's example and applies defaults", () => {
    expect(PolicyDocumentSchema.parse(apiMdExample).rules).toHaveLength(3);
    expect(PolicyDocumentSchema.parse({})).toEqual(DEFAULT_POLICY);
    expect(DEFAULT_POLICY).toEqual({ defaultEffect: "deny", rules: [] });
  });

  it("rejects unknown fields at the top and in rules, naming each", () => {
    const issues = validationIssues({
      defaultEffect: "deny",
      extra: true,
      rules: [{ id: "r1", effect: "allow", tool: ["x"] }],
    });
    expect(issues).toContainEqual({ path: "extra", message: 'unknown field "extra"' });
    expect(issues).toContainEqual({ path: "rules[0].tool", message: 'rule "r1": unknown field "tool"' });
    expect(
      validationIssues({ rules: [{ id: "r", effect: "allow", rateLimit: { perMinute: 5, x: 1 } }] }),
    ).toEqual([{ path: "rules[0].rateLimit.x", message: 'rule "r": unknown field "x"' }]);
  });

  it("requires a well-formed id and a known effect", () => {
    const issues = validationIssues({
      rules: [{ effect: "allow" }, { id: "-bad", effect: "allow" }, { id: "x".repeat(65), effect: "allow" }],
    });
    expect(issues.map((i) => i.path)).toEqual(["rules[0].id", "rules[1].id", "rules[2].id"]);
    expect(validationIssues({ rules: [{ id: "r", effect: "permit" }] })[0]?.path).toBe("rules[0].effect");
    expect(validationIssues({ defaultEffect: "maybe" })[0]?.path).toBe("defaultEffect");
    expect(() => compilePolicy({ rules: [{ id: "A.b_c-9", effect: "allow" }] })).not.toThrow();
  });

  it("rejects duplicate rule ids, naming the second and the first", () => {
    const issues = validationIssues({
      rules: [
        { id: "a", effect: "allow" },
        { id: "b", effect: "allow" },
        { id: "a", effect: "deny" },
      ],
    });
    expect(issues).toEqual([
      { path: "rules[2].id", message: 'rule "a": duplicate rule id "a" (already used by rules[0])' },
    ]);
  });

  it("rejects malformed principals, empty lists and a bad rateLimit", () => {
    const issues = validationIssues({
      rules: [
        { id: "p", effect: "allow", principals: ["group:x"] },
        { id: "e", effect: "allow", tools: [] },
        { id: "n", effect: "allow", principals: ["role:"] },
        { id: "r", effect: "allow", rateLimit: { perMinute: 0 } },
      ],
    });
    expect(issues.map((i) => i.path)).toEqual([
      "rules[0].principals[0]",
      "rules[1].tools",
      "rules[2].principals[0]",
      "rules[3].rateLimit.perMinute",
    ]);
    expect(issues[0]?.message).toContain('rule "p"');
  });

  it("rejects a document that is not an object", () => {
    expect(validationIssues(null)[0]?.path).toBe("(document)");
    expect(validationIssues({ rules: "nope" })[0]?.path).toBe("rules");
  });
});

describe("compilePolicy: CEL conditions are checked when saved", () => {
  it("names the rule with a CEL syntax error by index and id", () => {
    const err = (() => {
      try {
        compilePolicy({
          rules: [
            { id: "ok", effect: "allow" },
            { id: "fine", effect: "allow", when: "tool == 'x'" },
            { id: "broken", effect: "allow", when: "tool.startsWith(" },
          ],
        });
      } catch (e) {
        return e as AppError;
      }
      throw new Error("expected a validation error");
    })();
    expect(err.details).toEqual([
      {
        path: "rules[2].when",
        message: expect.stringContaining('rule "broken": CEL syntax error at column'),
      },
    ]);
    expect(err.message).toContain("rules[2].when");
    expect(err.message).toContain("Unexpected token");
    expect(err.toProblem().error.code).toBe("VALIDATION_FAILED");
  });

  it("rejects unknown variables, type errors and non-boolean conditions", () => {
    const issues = validationIssues({
      rules: [
        { id: "unknown-var", effect: "allow", when: "user.name == 'x'" },
        { id: "type", effect: "allow", when: "tool + 1 == 2" },
        { id: "not-bool", effect: "allow", when: "size(roles)" },
        { id: "empty", effect: "allow", when: "   " },
      ],
    });
    expect(issues.map((i) => i.path)).toEqual([
      "rules[3].when",
      "rules[0].when",
      "rules[1].when",
      "rules[2].when",
    ]);
    const byPath = Object.fromEntries(issues.map((i) => [i.path, i.message]));
    expect(byPath["rules[0].when"]).toContain("Unknown variable: user");
    expect(byPath["rules[1].when"]).toContain("CEL type error");
    expect(byPath["rules[2].when"]).toContain("must be a boolean expression, not int");
  });

  it("reports bad conditions together with schema problems elsewhere", () => {
    const issues = validationIssues({
      rules: [
        { id: "x", effect: "allow", bogus: 1 },
        { id: "y", effect: "allow", when: "((" },
      ],
    });
    expect(issues.map((i) => i.path)).toEqual(["rules[0].bogus", "rules[1].when"]);
  });
});

describe("evaluate", () => {
  const policy = compilePolicy(apiMdExample);
  const call = (principal: Principal, upstream: string, tool: string, args?: Record<string, unknown>) =>
    policy.evaluate({ principal, upstream, tool, ...(args ? { args } : {}) });

  it("allows by role and by agent, and names the rule", () => {
    expect(call(jwt({ roles: ["research"] }), "github", "get_issue")).toEqual({
      decision: "allow",
      ruleId: "researchers-read",
      reason: 'allowed by rule "researchers-read"',
    });
    expect(call(apiKey({ agent: "scout" }), "github", "search_code").decision).toBe("allow");
    expect(call(apiKey({ agent: "scout" }), "github", "create_issue")).toMatchObject({
      decision: "deny",
      ruleId: null,
    });
    expect(call(apiKey({ agent: "other" }), "github", "get_issue").ruleId).toBeNull();
    expect(call(jwt({ roles: ["research"] }), "gitlab", "get_issue").decision).toBe("deny");
  });

  it("falls back to defaultEffect both ways, with ruleId null", () => {
    const denied = call(apiKey(), "postgres", "select");
    expect(denied).toEqual({
      decision: "deny",
      ruleId: null,
      reason: "no rule matched; the policy's default effect is deny",
    });
    const open = compilePolicy({ ...apiMdExample, defaultEffect: "allow" });
    expect(open.evaluate({ principal: apiKey(), upstream: "postgres", tool: "select" })).toEqual({
      decision: "allow",
      ruleId: null,
      reason: "no rule matched; the policy's default effect is allow",
    });
    expect(open.evaluate({ principal: apiKey(), upstream: "postgres", tool: "drop_table" }).ruleId).toBe(
      "no-destructive-sql",
    );
    expect(
      compilePolicy(DEFAULT_POLICY).evaluate({ principal: apiKey(), upstream: "a", tool: "b" }).decision,
    ).toBe("deny");
  });

  it("lets a matching deny win over any allow, wherever it stands", () => {
    const p = compilePolicy({
      rules: [
        { id: "allow-all", effect: "allow" },
        { id: "allow-sql", effect: "allow", upstreams: ["postgres"] },
        { id: "no-drop", effect: "deny", upstreams: ["postgres"], tools: ["drop_*"] },
      ],
    });
    expect(p.evaluate({ principal: apiKey(), upstream: "postgres", tool: "drop_table" })).toEqual({
      decision: "deny",
      ruleId: "no-drop",
      reason: 'denied by rule "no-drop"',
    });
    expect(p.evaluate({ principal: apiKey(), upstream: "postgres", tool: "query" }).ruleId).toBe("allow-all");
    const denyOnly = compilePolicy({
      defaultEffect: "allow",
      rules: [{ id: "d", effect: "deny", tools: ["*"] }],
    });
    expect(denyOnly.evaluate({ principal: anonymous, upstream: "x", tool: "y" }).ruleId).toBe("d");
  });

  it("matches every principal kind", () => {
    const p = compilePolicy({
      rules: [
        { id: "agent", effect: "allow", upstreams: ["a"], principals: ["agent:claude-*"] },
        { id: "role", effect: "allow", upstreams: ["r"], principals: ["role:ops.?"] },
        { id: "key", effect: "allow", upstreams: ["k"], principals: ["key:k_1*"] },
        { id: "sub", effect: "allow", upstreams: ["s"], principals: ["sub:alice"] },
        { id: "anon", effect: "allow", upstreams: ["n"], principals: ["anonymous"] },
        { id: "star", effect: "allow", upstreams: ["*"], tools: ["public_*"], principals: ["*"] },
      ],
    });
    const ok = (principal: Principal, upstream: string, tool = "t") =>
      p.evaluate({ principal, upstream, tool }).decision === "allow";

    expect(ok(apiKey({ agent: "claude-code" }), "a")).toBe(true);
    expect(ok(jwt({ agent: "claude-desktop" }), "a")).toBe(true);
    expect(ok(apiKey({ agent: "gpt" }), "a")).toBe(false);
    expect(ok(apiKey({ agent: null }), "a")).toBe(false);

    expect(ok(jwt({ roles: ["dev", "ops.1"] }), "r")).toBe(true);
    expect(ok(jwt({ roles: ["ops.12"] }), "r")).toBe(false);
    expect(ok(jwt({ roles: [] }), "r")).toBe(false);

    expect(ok(apiKey({ keyId: "k_123" }), "k")).toBe(true);
    expect(ok(apiKey({ keyId: "k_2" }), "k")).toBe(false);
    expect(ok(apiKey({ keyId: undefined, id: "key:k_19" }), "k")).toBe(true);
    // key: never matches a JWT, sub: never an API key, even with look-alike ids.
    expect(ok(jwt({ id: "key:k_1", subject: "k_1" }), "k")).toBe(false);

    expect(ok(jwt({ subject: "alice" }), "s")).toBe(true);
    expect(ok(jwt({ subject: "alice2" }), "s")).toBe(false);
    expect(ok(apiKey({ id: "sub:alice" }), "s")).toBe(false);

    expect(ok(anonymous, "n")).toBe(true);
    expect(ok(apiKey(), "n")).toBe(false);

    for (const who of [anonymous, apiKey(), jwt()]) {
      expect(ok(who, "anything", "public_read")).toBe(true);
      expect(ok(who, "anything", "private")).toBe(false);
    }
  });

  it("an omitted list matches everything", () => {
    const p = compilePolicy({ rules: [{ id: "all", effect: "allow" }] });
    for (const principal of [anonymous, apiKey(), jwt({ roles: ["x"] })]) {
      expect(p.evaluate({ principal, upstream: "u", tool: "t" }).ruleId).toBe("all");
    }
  });

  it("evaluates api.md's CEL condition over claims and args", () => {
    const admin = jwt({ claims: { groups: ["staff", "admin"] } });
    expect(call(admin, "fs", "write_file", { path: "/srv/data.txt" })).toMatchObject({
      decision: "allow",
      ruleId: "admins-write-fs",
    });
    expect(call(admin, "fs", "write_file", { path: "/etc/passwd" }).decision).toBe("deny");
    expect(
      call(jwt({ claims: { groups: ["staff"] } }), "fs", "write_file", { path: "/srv/x" }).decision,
    ).toBe("deny");
  });

  it("treats a failing condition as no match for an allow", () => {
    // No `groups` claim (API key), and no `path` argument: both fail to evaluate.
    const noClaim = call(apiKey(), "fs", "write_file", { path: "/srv/x" });
    expect(noClaim).toMatchObject({ decision: "deny", ruleId: null });
    expect(noClaim.reason).toContain(
      'an allow was skipped because its condition failed: rule "admins-write-fs"',
    );
    expect(noClaim.reason).toContain("No such key: groups");
    expect(call(jwt({ claims: { groups: ["admin"] } }), "fs", "write_file", {}).decision).toBe("deny");
    expect(call(jwt({ claims: { groups: ["admin"] } }), "fs", "write_file").decision).toBe("deny");
  });

  it("treats a failing condition as a match for a deny (fails closed), and says so", () => {
    const p = compilePolicy({
      defaultEffect: "allow",
      rules: [{ id: "small-queries", effect: "deny", upstreams: ["pg"], when: "args.limit > 1000" }],
    });
    const input = (args: Record<string, unknown>): PolicyInput => ({
      principal: apiKey(),
      upstream: "pg",
      tool: "q",
      args,
    });
    expect(p.evaluate(input({ limit: 10 })).decision).toBe("allow");
    expect(p.evaluate(input({ limit: 5000 })).ruleId).toBe("small-queries");
    const failed = p.evaluate(input({}));
    expect(failed).toMatchObject({ decision: "deny", ruleId: "small-queries" });
    expect(failed.reason).toContain("could not be evaluated");
    expect(failed.reason).toContain("counts as matching");
    expect(p.evaluate(input({ limit: "many" })).decision).toBe("deny");
  });

  it("exposes agent, roles, upstream and tool to CEL, and non-boolean results fail", () => {
    const p = compilePolicy({
      rules: [
        {
          id: "mixed",
          effect: "allow",
          when: "agent == 'scout' && 'dev' in roles && upstream.startsWith('git') && tool.endsWith('_pr')",
        },
        { id: "dyn-not-bool", effect: "allow", upstreams: ["weird"], when: "args.flag" },
      ],
    });
    const who = apiKey({ agent: "scout", roles: ["dev"] });
    expect(p.evaluate({ principal: who, upstream: "github", tool: "open_pr" }).ruleId).toBe("mixed");
    expect(p.evaluate({ principal: who, upstream: "github", tool: "open_issue" }).ruleId).toBeNull();
    expect(
      p.evaluate({ principal: apiKey({ roles: ["dev"] }), upstream: "github", tool: "open_pr" }).ruleId,
    ).toBeNull();
    expect(p.evaluate({ principal: who, upstream: "weird", tool: "x", args: { flag: true } }).ruleId).toBe(
      "dyn-not-bool",
    );
    const notBool = p.evaluate({ principal: who, upstream: "weird", tool: "x", args: { flag: "yes" } });
    expect(notBool.ruleId).toBeNull();
    expect(notBool.reason).toContain("not a boolean");
  });

  it("handles numbers, nested args and lists from JSON", () => {
    const p = compilePolicy({
      rules: [
        {
          id: "n",
          effect: "allow",
          when: "args.limit <= 100 && args.opts.dry == true && args.tags.exists(t, t == 'safe') && args.ratio < 0.5",
        },
      ],
    });
    const go = (args: Record<string, unknown>) =>
      p.evaluate({ principal: apiKey(), upstream: "u", tool: "t", args }).decision;
    expect(go({ limit: 100, opts: { dry: true }, tags: ["a", "safe"], ratio: 0.25 })).toBe("allow");
    expect(go({ limit: 101, opts: { dry: true }, tags: ["safe"], ratio: 0.25 })).toBe("deny");
    expect(go({ limit: 1, opts: { dry: true }, tags: [], ratio: 0.25 })).toBe("deny");
  });

  it("never throws on odd input", () => {
    const p = compilePolicy(apiMdExample);
    const odd = { kind: "jwt", id: "sub:x", roles: undefined, claims: undefined } as unknown as Principal;
    expect(p.evaluate({ principal: odd, upstream: "fs", tool: "write_x", args: { path: 5 } }).decision).toBe(
      "deny",
    );
    expect(p.explain({ principal: odd, upstream: "", tool: "" }).decision).toBe("deny");
  });

  it("ruleById returns the rule, with its rateLimit", () => {
    const p = compilePolicy({ rules: [{ id: "r", effect: "allow", rateLimit: { perMinute: 30 } }] });
    expect(p.ruleById("r")?.rateLimit).toEqual({ perMinute: 30 });
    expect(p.ruleById("nope")).toBeUndefined();
    expect(p.document.rules[0]?.id).toBe("r");
  });
});

describe("matches() and optional arguments", () => {
  it("vets matches() patterns when the policy is saved", () => {
    expect(() =>
      compilePolicy({ rules: [{ id: "ok", effect: "allow", when: "args.path.matches('^/srv/[a-z]+$')" }] }),
    ).not.toThrow();
    const issues = validationIssues({
      rules: [
        { id: "lookahead", effect: "deny", when: "args.q.matches('(?=a)b')" },
        { id: "dynamic", effect: "allow", when: "tool.matches(args.pattern)" },
        { id: "invalid", effect: "allow", when: "tool.matches('(')" },
      ],
    });
    expect(issues.map((i) => i.path)).toEqual(["rules[0].when", "rules[1].when", "rules[2].when"]);
    expect(issues[0]?.message).toContain('rule "lookahead"');
    expect(issues[0]?.message).toContain("RE2 syntax");
    expect(issues[1]?.message).toContain("literal pattern");
    expect(issues[2]?.message).toContain("invalid regular expression");
  });

  it("matches() runs in linear time: patterns that backtrack on JavaScript's RegExp answer at once", () => {
    // On JavaScript's engine `(.*a){20}` or `.*a.*a…` against 4096 × "a" does not finish.
    const p = compilePolicy({
      defaultEffect: "allow",
      rules: [
        { id: "nested", effect: "deny", when: "args.q.matches('^(a+)+$')" },
        { id: "stars", effect: "deny", when: `args.q.matches('${".*a".repeat(20)}.*b')` },
      ],
    });
    const q = "a".repeat(POLICY_MATCHES_MAX_ARG_LENGTH - 1);
    expect(p.evaluate({ principal: apiKey(), upstream: "u", tool: "t", args: { q: `${q}!` } })).toMatchObject(
      {
        decision: "allow",
        ruleId: null,
      },
    );
    expect(p.evaluate({ principal: apiKey(), upstream: "u", tool: "t", args: { q } }).ruleId).toBe("nested");
    expect(p.evaluate({ principal: apiKey(), upstream: "x", tool: "t", args: { q: `${q}b` } }).ruleId).toBe(
      "stars",
    );
    // The same condition where only known variables are read is bound the same way.
    const claims = compilePolicy({
      rules: [{ id: "c", effect: "allow", when: `claims.email.matches('^(a|aa)+$') && args.x == 1` }],
    });
    expect(
      claims.isVisible({
        principal: apiKey({ claims: { email: `${"a".repeat(5000)}!` } }),
        upstream: "u",
        tool: "t",
      }),
    ).toBe(false);
  });

  it("a matches() condition fails on overlong arguments: no allow, and a deny still denies", () => {
    const p = compilePolicy({
      defaultEffect: "allow",
      rules: [
        { id: "no-etc", effect: "deny", upstreams: ["fs"], when: "args.path.matches('^/etc(/|$)')" },
        { id: "srv", effect: "allow", upstreams: ["fs2"], when: "args.path.matches('^/srv/')" },
      ],
    });
    const long = `/srv/${"a".repeat(POLICY_MATCHES_MAX_ARG_LENGTH)}`;
    const run = (upstream: string, path: unknown) =>
      p.evaluate({ principal: apiKey(), upstream, tool: "read", args: { path } });
    expect(run("fs", "/etc/passwd").ruleId).toBe("no-etc");
    expect(run("fs", "/srv/x").decision).toBe("allow");
    const padded = run("fs", long);
    expect(padded).toMatchObject({ decision: "deny", ruleId: "no-etc" });
    expect(padded.reason).toContain("too long for a condition that uses matches()");
    // The length guard looks at every argument string, however deep.
    expect(
      p.evaluate({
        principal: apiKey(),
        upstream: "fs",
        tool: "read",
        args: { path: "/srv", x: [{ y: long }] },
      }).ruleId,
    ).toBe("no-etc");

    const strict = compilePolicy({
      rules: [{ id: "srv", effect: "allow", when: "args.path.matches('^/srv/')" }],
    });
    expect(
      strict.evaluate({ principal: apiKey(), upstream: "u", tool: "t", args: { path: "/srv/x" } }).ruleId,
    ).toBe("srv");
    expect(
      strict.evaluate({ principal: apiKey(), upstream: "u", tool: "t", args: { path: long } }).ruleId,
    ).toBeNull();
  });

  it("optional field access lets a condition treat a missing argument explicitly", () => {
    const p = compilePolicy({
      rules: [{ id: "small", effect: "allow", when: "args.?limit.orValue(10) <= 100" }],
    });
    const go = (args: Record<string, unknown>) =>
      p.evaluate({ principal: apiKey(), upstream: "u", tool: "t", args }).decision;
    expect(go({})).toBe("allow");
    expect(go({ limit: 50 })).toBe("allow");
    expect(go({ limit: 500 })).toBe("deny");
  });
});

describe("explain", () => {
  const policy = compilePolicy(apiMdExample);

  it("traces every rule in order with why, and decides like evaluate", () => {
    const input: PolicyInput = {
      principal: jwt({ roles: ["research"], claims: { groups: ["admin"] } }),
      upstream: "fs",
      tool: "write_file",
      args: { path: "/etc/hosts" },
    };
    const out = policy.explain(input);
    expect(out).toMatchObject({ ...policy.evaluate(input) });
    expect(out.trace).toEqual([
      {
        ruleId: "researchers-read",
        effect: "allow",
        matched: false,
        why: 'upstream "fs" is not in [github]',
      },
      {
        ruleId: "no-destructive-sql",
        effect: "deny",
        matched: false,
        why: 'upstream "fs" is not in [postgres]',
      },
      {
        ruleId: "admins-write-fs",
        effect: "allow",
        matched: false,
        why: "principal, upstream and tool match; the condition is false",
      },
    ]);
  });

  it("explains tool and principal misses, unconditional matches and failing conditions", () => {
    const p = compilePolicy({
      rules: [
        { id: "role", effect: "allow", principals: ["role:admin"] },
        { id: "tool", effect: "allow", tools: ["get_*"] },
        { id: "always", effect: "allow", upstreams: ["u"] },
        { id: "deny-fail", effect: "deny", when: "args.x == 1" },
      ],
    });
    const out = p.explain({
      principal: apiKey({ agent: "bot", roles: ["dev"] }),
      upstream: "u",
      tool: "put",
    });
    expect(out.decision).toBe("deny");
    expect(out.ruleId).toBe("deny-fail");
    expect(out.trace.map((t) => [t.ruleId, t.matched])).toEqual([
      ["role", false],
      ["tool", false],
      ["always", true],
      ["deny-fail", true],
    ]);
    expect(out.trace[0]?.why).toBe("the caller (agent:bot, role:dev, key:k_123) is not in [role:admin]");
    expect(out.trace[1]?.why).toBe('tool "put" is not in [get_*]');
    expect(out.trace[2]?.why).toBe("principal, upstream and tool match; no condition");
    expect(out.trace[3]?.why).toContain("a failing deny counts as matching");
  });

  it("agrees with evaluate on many inputs", () => {
    const principals = [
      anonymous,
      apiKey({ agent: "scout" }),
      jwt({ roles: ["research"], claims: { groups: ["admin"] } }),
    ];
    for (const principal of principals)
      for (const upstream of ["github", "postgres", "fs"])
        for (const tool of ["get_x", "drop_t", "write_f"])
          for (const args of [undefined, { path: "/etc/x" }, { path: "/srv" }]) {
            const input: PolicyInput = { principal, upstream, tool, ...(args ? { args } : {}) };
            const { trace: _trace, ...decided } = policy.explain(input);
            expect(decided).toEqual(policy.evaluate(input));
          }
  });
});

describe("isVisible and mayUseUpstream", () => {
  const doc: PolicyDocument = {
    defaultEffect: "deny",
    rules: [
      { id: "read", effect: "allow", upstreams: ["github"], tools: ["get_*", "list_*"] },
      { id: "no-delete", effect: "deny", upstreams: ["github"], tools: ["get_secret"] },
      {
        id: "admin-write",
        effect: "allow",
        upstreams: ["fs"],
        tools: ["write_*"],
        when: "'admin' in roles && args.path != '/'",
      },
      {
        id: "any-args",
        effect: "allow",
        upstreams: ["fs"],
        tools: ["read_*"],
        when: "args.path.startsWith('/srv')",
      },
      { id: "big-deny", effect: "deny", upstreams: ["fs"], tools: ["read_*"], when: "args.size > 10" },
      { id: "ops-only", effect: "allow", upstreams: ["ops"], when: "'ops' in roles" },
      { id: "no-bots", effect: "deny", upstreams: ["ops"], principals: ["agent:bot-*"] },
    ],
  };
  const p = compilePolicy(doc);
  const visible = (principal: Principal, upstream: string, tool: string) =>
    p.isVisible({ principal, upstream, tool });

  it("hides tools no rule allows and tools an unconditional deny matches", () => {
    expect(visible(apiKey(), "github", "get_issue")).toBe(true);
    expect(visible(apiKey(), "github", "create_issue")).toBe(false);
    expect(visible(apiKey(), "github", "get_secret")).toBe(false);
    expect(visible(apiKey(), "slack", "post")).toBe(false);
  });

  it("shows a tool behind a conditional allow that needs args, unless its other conditions already fail", () => {
    expect(visible(jwt({ roles: ["admin"] }), "fs", "write_file")).toBe(true);
    // `'admin' in roles` is known at listing time and false: the allow can never match.
    expect(visible(jwt({ roles: ["dev"] }), "fs", "write_file")).toBe(false);
    // Purely args-dependent: "maybe" → visible.
    expect(visible(apiKey(), "fs", "read_file")).toBe(true);
  });

  it("a conditional deny does not hide; args-free conditions are decided at listing", () => {
    // `big-deny` depends on args: it does not hide read_file (checked above).
    expect(visible(jwt({ roles: ["ops"] }), "ops", "restart")).toBe(true);
    expect(visible(jwt({ roles: ["dev"] }), "ops", "restart")).toBe(false);
    expect(visible(jwt({ roles: ["ops"], agent: "bot-1" }), "ops", "restart")).toBe(false);
  });

  it("a deny whose args-free condition fails hides (fail closed)", () => {
    const q = compilePolicy({
      defaultEffect: "allow",
      rules: [{ id: "need-tier", effect: "deny", when: "claims.tier != 'gold'" }],
    });
    expect(q.isVisible({ principal: jwt({ claims: { tier: "gold" } }), upstream: "u", tool: "t" })).toBe(
      true,
    );
    expect(q.isVisible({ principal: jwt({ claims: { tier: "free" } }), upstream: "u", tool: "t" })).toBe(
      false,
    );
    expect(q.isVisible({ principal: apiKey(), upstream: "u", tool: "t" })).toBe(false);
  });

  it("with defaultEffect allow only denies hide", () => {
    const q = compilePolicy({ ...doc, defaultEffect: "allow" });
    expect(q.isVisible({ principal: apiKey(), upstream: "slack", tool: "post" })).toBe(true);
    expect(q.isVisible({ principal: apiKey(), upstream: "github", tool: "get_secret" })).toBe(false);
  });

  it("is consistent with evaluate: a visible-false tool is never allowed", () => {
    const principals = [
      apiKey(),
      jwt({ roles: ["admin"] }),
      jwt({ roles: ["ops"], agent: "bot-2" }),
      anonymous,
    ];
    const argSets = [{}, { path: "/srv/a", size: 1 }, { path: "/" }, { path: "/srv/b", size: 99 }];
    for (const principal of principals)
      for (const upstream of ["github", "fs", "ops", "slack"])
        for (const tool of ["get_issue", "get_secret", "write_file", "read_file", "restart"]) {
          if (p.isVisible({ principal, upstream, tool })) continue;
          for (const args of argSets)
            expect(p.evaluate({ principal, upstream, tool, args }).decision).toBe("deny");
        }
  });

  it("mayUseUpstream: only upstreams some rule could allow, minus blanket denies", () => {
    expect(p.mayUseUpstream(apiKey(), "github")).toBe(true);
    expect(p.mayUseUpstream(apiKey(), "slack")).toBe(false);
    expect(p.mayUseUpstream(jwt({ roles: ["dev"] }), "fs")).toBe(true); // any-args is "maybe"
    expect(p.mayUseUpstream(jwt({ roles: ["ops"] }), "ops")).toBe(true);
    expect(p.mayUseUpstream(jwt({ roles: ["dev"] }), "ops")).toBe(false);
    expect(p.mayUseUpstream(jwt({ roles: ["ops"], agent: "bot-7" }), "ops")).toBe(false);

    const toolCond = compilePolicy({
      rules: [{ id: "t", effect: "allow", upstreams: ["x"], when: "tool == 'a' && 'r' in roles" }],
    });
    expect(toolCond.mayUseUpstream(jwt({ roles: ["r"] }), "x")).toBe(true);
    expect(toolCond.mayUseUpstream(jwt({ roles: [] }), "x")).toBe(false);

    const open = compilePolicy({
      defaultEffect: "allow",
      rules: [
        { id: "partial", effect: "deny", upstreams: ["a"], tools: ["drop_*"] },
        { id: "blanket", effect: "deny", upstreams: ["b"], tools: ["*"] },
      ],
    });
    expect(open.mayUseUpstream(apiKey(), "a")).toBe(true);
    expect(open.mayUseUpstream(apiKey(), "b")).toBe(false);
    expect(open.mayUseUpstream(apiKey(), "c")).toBe(true);
  });
});

describe("many rules", () => {
  // Speed is measured by test/bench/policy-eval.mjs, not asserted here.
  it("finds the deciding rule among fifty non-matching ones and two conditions", () => {
    const rules = Array.from({ length: 50 }, (_, i) => ({
      id: `r${i}`,
      effect: "allow" as const,
      upstreams: [`up${i}`],
      tools: ["*"],
    }));
    const p = compilePolicy({
      rules: [
        ...rules,
        { id: "deny-etc", effect: "deny", upstreams: ["fs"], when: "args.path.startsWith('/etc')" },
        apiMdExample.rules[2],
      ],
    });
    const input: PolicyInput = {
      principal: jwt({ roles: ["x"], claims: { groups: ["admin"] } }),
      upstream: "fs",
      tool: "write_file",
      args: { path: "/srv/file.txt" },
    };
    expect(p.evaluate(input).ruleId).toBe("admins-write-fs");
    expect(p.evaluate({ ...input, args: { path: "/etc/passwd" } }).ruleId).toBe("deny-etc");
  });
});
