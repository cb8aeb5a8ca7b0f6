import { RE2JS } from "re2js";

/**
 * CEL's `matches()` takes RE2 syntax, and here it runs on RE2JS (a JavaScript port of RE2), not on
 * JavaScript's backtracking RegExp: the strings it runs on (tool arguments) come from agents, and
 * one tenant's pattern must not be able to stall a gateway node shared by every tenant. RE2 matches
 * in time linear in the input for every pattern it accepts (no backreferences, no lookaround), so
 * `(a+)+$` and `.*a.*a.*a.*b` are as cheap as `^/srv/`.
 */

// Patterns are literals checked when a policy is saved; a node compiles each distinct one once.
// Bounded so that a stream of policy edits cannot grow it for ever.
const compiled = new Map<string, RE2JS>();
const MAX_CACHED = 10_000;

/** Compiles an RE2 pattern (cached); throws RE2's syntax error for a pattern it does not accept. */
export function compileRe2(pattern: string): RE2JS {
  let re = compiled.get(pattern);
  if (!re) {
    re = RE2JS.compile(pattern);
    if (compiled.size >= MAX_CACHED) compiled.clear();
    compiled.set(pattern, re);
  }
  return re;
}

/** CEL `string.matches(pattern)`: true when the pattern matches any part of the string, in linear time. */
export function re2Matches(value: string, pattern: string): boolean {
  return compileRe2(pattern).matcher(value).find();
}

/** Why the pattern is refused (not valid RE2 syntax), or null when it is acceptable. */
export function unsafeRegexReason(pattern: string): string | null {
  try {
    compileRe2(pattern);
    return null;
  } catch (err) {
    return `invalid regular expression (RE2 syntax: no backreferences or lookaround): ${(err as Error).message}`;
  }
}
