import { type ASTNode, Environment, type ParseResult, serialize } from "@marcbachmann/cel-js";
import type { z } from "zod";
import { AppError } from "../errors.js";
import type { Principal } from "../principal.js";
import { compileGlob, type Glob } from "./glob.js";
import { type PolicyDocument, PolicyDocumentSchema, type PolicyRule } from "./policy.schema.js";
import { re2Matches, unsafeRegexReason } from "./regex-safety.js";

/** One tool call (or one listed tool) as the policy sees it. `tool` is the unprefixed upstream tool name. */
export interface PolicyInput {
  principal: Principal;
  upstream: string;
  tool: string;
  args?: Record<string, unknown>;
}

/** The outcome of a policy check; `ruleId` is null when `defaultEffect` decided. */
export interface PolicyDecision {
  decision: "allow" | "deny";
  ruleId: string | null;
  reason: string;
}

/** What one rule did for one input, for `explain` (policy simulation in the console and API). */
export interface PolicyTraceEntry {
  ruleId: string;
  effect: "allow" | "deny";
  matched: boolean;
  why: string;
}

export interface PolicyExplanation extends PolicyDecision {
  /** Every rule in document order. */
  trace: PolicyTraceEntry[];
}

/** A validated policy with every glob and CEL condition compiled once, ready for the hot path. */
export interface CompiledPolicy {
  /** The validated document (defaults applied). */
  readonly document: PolicyDocument;
  /** Decides one call: a matching deny wins, else a matching allow, else `defaultEffect`. */
  evaluate(input: PolicyInput): PolicyDecision;
  /** Like `evaluate`, plus what every rule did and why. */
  explain(input: PolicyInput): PolicyExplanation;
  /**
   * Whether a tool belongs in the caller's `tools/list` (arguments unknown). Hidden when an
   * unconditional deny matches or no rule could allow it; a condition that needs `args` counts as
   * "maybe": a conditional allow keeps the tool visible, a conditional deny does not hide it.
   */
  isVisible(input: Omit<PolicyInput, "args">): boolean;
  /** Cheap check whether the caller could use any tool of this upstream, so the gateway never contacts it otherwise. */
  mayUseUpstream(principal: Principal, upstream: string): boolean;
  /** The rule with this id, e.g. to read the `rateLimit` of the rule that allowed a call. */
  ruleById(id: string): PolicyRule | undefined;
}

/** The variables a `when` condition sees. */
export const POLICY_CEL_VARIABLES = ["claims", "agent", "roles", "upstream", "tool", "args"] as const;
type CelVariable = (typeof POLICY_CEL_VARIABLES)[number];

/** The name `matches()` calls are bound to after checking (see `bindMatchesToRe2`). */
const RE2_MATCHES = "matchesRe2";

// One environment for every policy: variables typed loosely enough for JSON claims and args.
// The limits bound what a single condition may cost at save time (and therefore per call).
const celEnv = new Environment({
  homogeneousAggregateLiterals: false,
  // `args.?limit.orValue(10)`: optional arguments without a failing condition.
  enableOptionalTypes: true,
  limits: { maxAstNodes: 1000, maxDepth: 32, maxListElements: 256, maxMapEntries: 256, maxCallArguments: 16 },
})
  .registerVariable("claims", "map", { description: "Verified JWT claims ({} for API keys)" })
  .registerVariable("agent", "dyn", { description: "Agent name, or null" })
  .registerVariable("roles", "list<string>", { description: "The principal's roles" })
  .registerVariable("upstream", "string", { description: "Upstream name" })
  .registerVariable("tool", "string", { description: "Tool name as the upstream knows it (unprefixed)" })
  .registerVariable("args", "map", { description: "Tool-call arguments ({} when listing)" })
  // cel-js runs `matches()` on JavaScript's backtracking RegExp and will not let it be replaced, so
  // every `matches` call is renamed to this linear-time RE2 twin once it has type-checked.
  .registerFunction(`string.${RE2_MATCHES}(string): bool`, (value: string, pattern: string) =>
    re2Matches(value, pattern),
  );

type CelContext = Record<CelVariable, unknown>;

/**
 * Longest argument string a condition using `matches()` will look at; longer ones make the
 * condition fail (so an allow does not match and a deny does). Bounds regex backtracking per call.
 */
export const POLICY_MATCHES_MAX_ARG_LENGTH = 4096;

interface CompiledCondition {
  source: string;
  run: ParseResult;
  usesArgs: boolean;
  /**
   * For a condition that needs unknown variables: the `&&`-conjuncts that do not, compiled on
   * their own. If they are false (or fail) the whole condition can never be true, whatever the
   * unknowns turn out to be. Null when there is no such conjunct (always "maybe").
   */
  withoutArgs: ParseResult | null;
  withoutArgsAndTool: ParseResult | null;
  usesArgsOrTool: boolean;
  /** Uses `matches()` and reads `args`: guard argument length before running. */
  boundArgs: boolean;
}

interface PrincipalMatcher {
  all: boolean;
  anonymous: boolean;
  agent: Glob[];
  role: Glob[];
  key: Glob[];
  sub: Glob[];
}

interface CompiledRule {
  index: number;
  rule: PolicyRule;
  principals: PrincipalMatcher | null;
  upstreams: Glob[] | null;
  tools: Glob[] | null;
  /** True when `tools` is omitted or contains a match-everything glob. */
  allTools: boolean;
  when: CompiledCondition | null;
}

type Outcome =
  | { kind: "principal" | "upstream" | "tool" }
  | { kind: "unconditional" | "true" | "false" }
  | { kind: "error"; message: string };

interface FieldIssue {
  path: string;
  message: string;
}

/** Validates a policy document and compiles it; throws `AppError("VALIDATION_FAILED")` naming each bad field. */
export function compilePolicy(doc: unknown): CompiledPolicy {
  const parsed = PolicyDocumentSchema.safeParse(doc);
  if (!parsed.success) {
    // Report bad conditions in the same answer as the schema problems, so one save shows all.
    const issues = zodIssues(parsed.error, doc);
    rawRules(doc).forEach((rule, index) => {
      const when = (rule as { when?: unknown } | null)?.when;
      const path = `rules[${index}].when`;
      if (typeof when !== "string" || when.trim() === "" || issues.some((i) => i.path === path)) return;
      try {
        compileCondition(when);
      } catch (err) {
        const id = ruleIdAt(doc, index);
        issues.push({ path, message: `${id ? `rule "${id}": ` : ""}${celErrorText(err)}` });
      }
    });
    throw invalid(issues);
  }
  const document = parsed.data;
  const issues: FieldIssue[] = [];
  const rules: CompiledRule[] = document.rules.map((rule, index) => {
    let when: CompiledCondition | null = null;
    if (rule.when !== undefined) {
      try {
        when = compileCondition(rule.when);
      } catch (err) {
        issues.push({ path: `rules[${index}].when`, message: `rule "${rule.id}": ${celErrorText(err)}` });
      }
    }
    const tools = rule.tools ? rule.tools.map(compileGlob) : null;
    return {
      index,
      rule,
      principals: rule.principals ? compilePrincipals(rule.principals) : null,
      upstreams: rule.upstreams ? rule.upstreams.map(compileGlob) : null,
      tools,
      allTools: tools === null || tools.some((g) => g.matchesAll),
      when,
    };
  });
  if (issues.length > 0) throw invalid(issues);
  return new Policy(document, rules);
}

function invalid(issues: FieldIssue[]): AppError {
  const summary = issues.map((i) => `${i.path}: ${i.message}`).join("; ");
  return new AppError("VALIDATION_FAILED", `The policy is invalid: ${summary}`, issues);
}

function zodIssues(error: z.ZodError, doc: unknown): FieldIssue[] {
  const out: FieldIssue[] = [];
  for (const issue of error.issues) {
    const ruleIndex = issue.path[0] === "rules" && typeof issue.path[1] === "number" ? issue.path[1] : null;
    const ruleId = ruleIndex === null ? null : ruleIdAt(doc, ruleIndex);
    const prefix = ruleId ? `rule "${ruleId}": ` : "";
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        out.push({ path: formatPath([...issue.path, key]), message: `${prefix}unknown field "${key}"` });
      }
    } else {
      out.push({ path: formatPath(issue.path), message: `${prefix}${issue.message}` });
    }
  }
  return out;
}

function rawRules(doc: unknown): unknown[] {
  if (!doc || typeof doc !== "object") return [];
  const rules = (doc as { rules?: unknown }).rules;
  return Array.isArray(rules) ? rules : [];
}

function ruleIdAt(doc: unknown, index: number): string | null {
  const rule = rawRules(doc)[index] as { id?: unknown } | null | undefined;
  return rule && typeof rule.id === "string" && rule.id.length <= 64 ? rule.id : null;
}

/** `["rules", 2, "when"]` → `rules[2].when`. */
function formatPath(path: PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out === "" ? String(part) : `.${String(part)}`;
  }
  return out === "" ? "(document)" : out;
}

function celErrorText(err: unknown): string {
  if (err instanceof Error) {
    const e = err as Error & { summary?: string; range?: { start: number } };
    const where = e.range ? ` at column ${e.range.start + 1}` : "";
    const what =
      e.name === "ParseError" ? "CEL syntax error" : e.name === "TypeError" ? "CEL type error" : "CEL error";
    return `${what}${where}: ${e.summary ?? e.message.split("\n")[0]}`;
  }
  return `CEL error: ${String(err)}`;
}

function compileCondition(source: string): CompiledCondition {
  const checked = celEnv.parse(source);
  const check = checked.check();
  if (!check.valid) throw check.error ?? new Error("the condition does not type-check");
  if (check.type !== "bool" && check.type !== "dyn") {
    throw celTypeError(`the condition must be a boolean expression, not ${check.type}`);
  }
  const usesMatches = checkMatchesCalls(checked.ast);
  const run = usesMatches ? parseBoundToRe2(source) : checked;
  const usesArgs = references(run.ast, new Set(["args"]));
  const usesArgsOrTool = references(run.ast, new Set(["args", "tool"]));
  return {
    source,
    run,
    usesArgs,
    usesArgsOrTool,
    boundArgs: usesMatches && usesArgs,
    withoutArgs: usesArgs ? knownConjuncts(run.ast, new Set(["args"])) : null,
    withoutArgsAndTool: usesArgsOrTool ? knownConjuncts(run.ast, new Set(["args", "tool"])) : null,
  };
}

function celTypeError(message: string): Error {
  return Object.assign(new Error(message), { name: "TypeError" });
}

function isMatchesCall(node: ASTNode): boolean {
  return (
    (node.op === "rcall" || node.op === "call") &&
    (node.args[0] === "matches" || node.args[0] === RE2_MATCHES)
  );
}

/**
 * Parses an already vetted condition again with every `matches` call renamed to its RE2 twin
 * before type-checking, which binds the calls to the linear-time implementation (cel-js caches the
 * binding at check time). Conjuncts re-parsed from it keep the new name.
 */
function parseBoundToRe2(source: string): ParseResult {
  const run = celEnv.parse(source);
  const rename = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const child of node) rename(child);
      return;
    }
    if (!isNode(node)) return;
    if (isMatchesCall(node)) (node.args as unknown[])[0] = RE2_MATCHES;
    rename(node.args);
  };
  rename(run.ast);
  const check = run.check();
  if (!check.valid) throw check.error ?? new Error("the condition does not type-check");
  return run;
}

/** Vets every `matches()` pattern (see regex-safety.ts); true when the expression uses `matches()`. */
function checkMatchesCalls(node: unknown): boolean {
  if (Array.isArray(node)) return node.map(checkMatchesCalls).some(Boolean);
  if (!isNode(node)) return false;
  let found = false;
  if ((node.op === "rcall" || node.op === "call") && isMatchesCall(node)) {
    found = true;
    const callArgs = node.op === "rcall" ? node.args[2] : node.args[1];
    const pattern = callArgs[callArgs.length - 1];
    if (pattern?.op !== "value" || typeof pattern.args !== "string") {
      throw celTypeError(
        "matches() needs a literal pattern string, so that it can be checked when the policy is saved",
      );
    }
    const unsafe = unsafeRegexReason(pattern.args);
    if (unsafe) throw celTypeError(`matches('${pattern.args}'): ${unsafe}`);
  }
  return checkMatchesCalls(node.args) || found;
}

function isNode(value: unknown): value is ASTNode {
  return typeof value === "object" && value !== null && "op" in value && "args" in value;
}

/** Whether the expression mentions any of these variables (conservative: a macro's loop variable of the same name counts). */
function references(node: unknown, names: Set<string>): boolean {
  if (Array.isArray(node)) return node.some((n) => references(n, names));
  if (!isNode(node)) return false;
  if (node.op === "id") return names.has(node.args);
  return references(node.args, names);
}

function conjuncts(node: ASTNode, out: ASTNode[] = []): ASTNode[] {
  if (node.op === "&&") {
    conjuncts(node.args[0], out);
    conjuncts(node.args[1], out);
  } else out.push(node);
  return out;
}

function knownConjuncts(ast: ASTNode, unknown: Set<string>): ParseResult | null {
  const known = conjuncts(ast).filter((c) => !references(c, unknown));
  if (known.length === 0) return null;
  return celEnv.parse(known.map((c) => `(${serialize(c)})`).join(" && "));
}

function compilePrincipals(patterns: string[]): PrincipalMatcher {
  const m: PrincipalMatcher = { all: false, anonymous: false, agent: [], role: [], key: [], sub: [] };
  for (const p of patterns) {
    if (p === "*") m.all = true;
    else if (p === "anonymous") m.anonymous = true;
    else {
      const colon = p.indexOf(":");
      const kind = p.slice(0, colon) as "agent" | "role" | "key" | "sub";
      m[kind].push(compileGlob(p.slice(colon + 1)));
    }
  }
  return m;
}

function anyGlob(globs: Glob[], value: string | null | undefined): boolean {
  if (value === null || value === undefined || value === "") return false;
  for (const g of globs) if (g.test(value)) return true;
  return false;
}

function idPart(principal: Principal, prefix: "key:" | "sub:"): string | undefined {
  return principal.id?.startsWith(prefix) ? principal.id.slice(prefix.length) : undefined;
}

// `*` is every caller, the anonymous one included: anonymous callers exist only when the tenant
// turned anonymous access on, and then a rule for everyone is meant for them too.
function principalMatches(m: PrincipalMatcher, p: Principal): boolean {
  if (m.all) return true;
  if (m.anonymous && p.kind === "anonymous") return true;
  if (m.agent.length > 0 && anyGlob(m.agent, p.agent)) return true;
  if (m.role.length > 0) for (const role of p.roles ?? []) if (anyGlob(m.role, role)) return true;
  if (m.key.length > 0 && p.kind === "api_key" && anyGlob(m.key, p.keyId ?? idPart(p, "key:"))) return true;
  if (m.sub.length > 0 && p.kind === "jwt" && anyGlob(m.sub, p.subject ?? idPart(p, "sub:"))) return true;
  return false;
}

function describeList(list: string[] | undefined): string {
  return list ? list.join(", ") : "*";
}

type Tri = "yes" | "no" | "maybe";

class Policy implements CompiledPolicy {
  private readonly denies: CompiledRule[];
  private readonly allows: CompiledRule[];
  private readonly byId: Map<string, PolicyRule>;

  constructor(
    readonly document: PolicyDocument,
    private readonly rules: CompiledRule[],
  ) {
    this.denies = rules.filter((r) => r.rule.effect === "deny");
    this.allows = rules.filter((r) => r.rule.effect === "allow");
    this.byId = new Map(rules.map((r) => [r.rule.id, r.rule]));
  }

  ruleById(id: string): PolicyRule | undefined {
    return this.byId.get(id);
  }

  evaluate(input: PolicyInput): PolicyDecision {
    const ctx = new LazyContext(input);
    for (const r of this.denies) {
      const o = outcome(r, input, ctx);
      if (o.kind === "unconditional" || o.kind === "true") return denied(r, null);
      if (o.kind === "error") return denied(r, o.message);
    }
    let skipped: string | null = null;
    for (const r of this.allows) {
      const o = outcome(r, input, ctx);
      if (o.kind === "unconditional" || o.kind === "true") {
        return { decision: "allow", ruleId: r.rule.id, reason: `allowed by rule "${r.rule.id}"` };
      }
      if (o.kind === "error" && skipped === null) skipped = `rule "${r.rule.id}": ${o.message}`;
    }
    return this.byDefault(skipped);
  }

  explain(input: PolicyInput): PolicyExplanation {
    const ctx = new LazyContext(input);
    const trace: PolicyTraceEntry[] = [];
    let deny: PolicyDecision | null = null;
    let allow: PolicyDecision | null = null;
    let skipped: string | null = null;
    for (const r of this.rules) {
      const o = outcome(r, input, ctx);
      const { id, effect } = r.rule;
      const matched =
        o.kind === "unconditional" || o.kind === "true" || (o.kind === "error" && effect === "deny");
      trace.push({ ruleId: id, effect, matched, why: why(r, input, o) });
      if (!matched) {
        if (o.kind === "error" && skipped === null) skipped = `rule "${id}": ${o.message}`;
        continue;
      }
      if (effect === "deny") deny ??= denied(r, o.kind === "error" ? o.message : null);
      else allow ??= { decision: "allow", ruleId: id, reason: `allowed by rule "${id}"` };
    }
    return { ...(deny ?? allow ?? this.byDefault(skipped)), trace };
  }

  isVisible(input: Omit<PolicyInput, "args">): boolean {
    const full: PolicyInput = { ...input, args: {} };
    const ctx = new LazyContext(full);
    for (const r of this.denies) {
      if (!targets(r, full, true)) continue;
      if (this.conditionFor(r, ctx, "args") === "yes") return false;
    }
    if (this.document.defaultEffect === "allow") return true;
    for (const r of this.allows) {
      if (!targets(r, full, true)) continue;
      if (this.conditionFor(r, ctx, "args") !== "no") return true;
    }
    return false;
  }

  mayUseUpstream(principal: Principal, upstream: string): boolean {
    const input: PolicyInput = { principal, upstream, tool: "", args: {} };
    const ctx = new LazyContext(input);
    for (const r of this.denies) {
      // Only a deny that covers every tool of the upstream rules the upstream out.
      if (!r.allTools || !targets(r, input, false)) continue;
      if (this.conditionFor(r, ctx, "args+tool") === "yes") return false;
    }
    if (this.document.defaultEffect === "allow") return true;
    for (const r of this.allows) {
      if (!targets(r, input, false)) continue;
      if (this.conditionFor(r, ctx, "args+tool") !== "no") return true;
    }
    return false;
  }

  /**
   * Three-valued condition with some variables unknown. "yes" only when the condition is known
   * true (or, for a deny, known to fail: fail closed); "no" when it can never be true; else "maybe".
   */
  private conditionFor(r: CompiledRule, ctx: LazyContext, unknown: "args" | "args+tool"): Tri {
    const when = r.when;
    if (!when) return "yes";
    const dependsOnUnknown = unknown === "args" ? when.usesArgs : when.usesArgsOrTool;
    if (!dependsOnUnknown) {
      const res = runCondition(when.run, ctx.get());
      if (res === true) return "yes";
      if (res === false) return "no";
      return r.rule.effect === "deny" ? "yes" : "no";
    }
    const pre = unknown === "args" ? when.withoutArgs : when.withoutArgsAndTool;
    if (pre === null) return "maybe";
    // A false or failing known conjunct makes the whole `&&` false or failing: never a match for
    // an allow. For a deny that would still be "maybe" (a failure fails closed), so keep "maybe".
    const res = runCondition(pre, ctx.get());
    if (res === true) return "maybe";
    return r.rule.effect === "allow" ? "no" : "maybe";
  }

  private byDefault(skipped: string | null): PolicyDecision {
    const effect = this.document.defaultEffect;
    const note = skipped ? ` (an allow was skipped because its condition failed: ${skipped})` : "";
    return {
      decision: effect,
      ruleId: null,
      reason: `no rule matched; the policy's default effect is ${effect}${note}`,
    };
  }
}

function denied(r: CompiledRule, conditionError: string | null): PolicyDecision {
  const id = r.rule.id;
  return {
    decision: "deny",
    ruleId: id,
    reason:
      conditionError === null
        ? `denied by rule "${id}"`
        : `denied by rule "${id}": its condition could not be evaluated (${conditionError}), and a deny whose condition fails counts as matching`,
  };
}

/** Builds the CEL context once per call, and only if some condition needs it. */
class LazyContext {
  private ctx: CelContext | null = null;
  private longest = -1;
  constructor(private readonly input: PolicyInput) {}

  longestArgString(): number {
    if (this.longest < 0) this.longest = longestString(this.input.args ?? {}, 0);
    return this.longest;
  }
  get(): CelContext {
    if (this.ctx === null) {
      const p = this.input.principal;
      this.ctx = {
        claims: p.claims ?? {},
        agent: p.agent ?? null,
        roles: p.roles ?? [],
        upstream: this.input.upstream,
        tool: this.input.tool,
        args: this.input.args ?? {},
      };
    }
    return this.ctx;
  }
}

function longestString(value: unknown, depth: number): number {
  if (typeof value === "string") return value.length;
  // Beyond this depth, give up and report "too long": fail closed rather than walk forever.
  if (depth > 32) return Number.POSITIVE_INFINITY;
  let max = 0;
  if (Array.isArray(value)) for (const v of value) max = Math.max(max, longestString(v, depth + 1));
  else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) max = Math.max(max, k.length, longestString(v, depth + 1));
  }
  return max;
}

/** true, false, or the error text; never throws. Anything but a boolean result is an error. */
function runCondition(run: ParseResult, ctx: CelContext): boolean | string {
  try {
    const res: unknown = run(ctx);
    if (typeof res === "boolean") return res;
    return `the condition returned ${res === null ? "null" : typeof res}, not a boolean`;
  } catch (err) {
    if (err instanceof Error) {
      const e = err as Error & { summary?: string };
      return e.summary ?? e.message.split("\n")[0] ?? e.name;
    }
    return String(err);
  }
}

function targets(r: CompiledRule, input: PolicyInput, checkTool: boolean): boolean {
  if (r.upstreams && !r.upstreams.some((g) => g.test(input.upstream))) return false;
  if (checkTool && r.tools && !r.tools.some((g) => g.test(input.tool))) return false;
  if (r.principals && !principalMatches(r.principals, input.principal)) return false;
  return true;
}

function outcome(r: CompiledRule, input: PolicyInput, ctx: LazyContext): Outcome {
  // Cheapest tests first: upstream and tool names are short literal or glob matches.
  if (r.upstreams && !r.upstreams.some((g) => g.test(input.upstream))) return { kind: "upstream" };
  if (r.tools && !r.tools.some((g) => g.test(input.tool))) return { kind: "tool" };
  if (r.principals && !principalMatches(r.principals, input.principal)) return { kind: "principal" };
  if (!r.when) return { kind: "unconditional" };
  // A condition that fails (missing claim or argument, wrong type) does not match for an allow,
  // and, to fail closed, does match for a deny.
  if (r.when.boundArgs && ctx.longestArgString() > POLICY_MATCHES_MAX_ARG_LENGTH) {
    return {
      kind: "error",
      message: `an argument is longer than ${POLICY_MATCHES_MAX_ARG_LENGTH} characters, too long for a condition that uses matches()`,
    };
  }
  const res = runCondition(r.when.run, ctx.get());
  if (res === true) return { kind: "true" };
  if (res === false) return { kind: "false" };
  return { kind: "error", message: res };
}

function why(r: CompiledRule, input: PolicyInput, o: Outcome): string {
  switch (o.kind) {
    case "upstream":
      return `upstream "${input.upstream}" is not in [${describeList(r.rule.upstreams)}]`;
    case "tool":
      return `tool "${input.tool}" is not in [${describeList(r.rule.tools)}]`;
    case "principal":
      return `the caller (${describePrincipal(input.principal)}) is not in [${describeList(r.rule.principals)}]`;
    case "unconditional":
      return "principal, upstream and tool match; no condition";
    case "true":
      return "principal, upstream and tool match; the condition is true";
    case "false":
      return "principal, upstream and tool match; the condition is false";
    case "error":
      return r.rule.effect === "deny"
        ? `the condition failed (${o.message}); a failing deny counts as matching`
        : `the condition failed (${o.message}); a failing allow counts as not matching`;
  }
}

function describePrincipal(p: Principal): string {
  const parts: string[] = [];
  if (p.kind === "anonymous") parts.push("anonymous");
  if (p.agent) parts.push(`agent:${p.agent}`);
  for (const role of p.roles ?? []) parts.push(`role:${role}`);
  const key = p.keyId ?? idPart(p, "key:");
  if (p.kind === "api_key" && key) parts.push(`key:${key}`);
  const sub = p.subject ?? idPart(p, "sub:");
  if (p.kind === "jwt" && sub) parts.push(`sub:${sub}`);
  return parts.join(", ") || p.id;
}
