/**
 * CEL's `matches()` runs on JavaScript's backtracking RegExp engine here, not on RE2, and the
 * strings it runs on (tool arguments) come from agents. One tenant's pattern must not be able to
 * stall a gateway node shared by every tenant, so patterns are vetted when the policy is saved:
 * this rejects the shapes that backtrack exponentially (a repeated group that itself contains a
 * quantifier or an alternation, e.g. `(a+)+`, `(a|aa)*`) and backreferences. Polynomial cases
 * (`.*a.*b`) are bounded at call time by a limit on argument length instead.
 *
 * Returns why the pattern is refused, or null when it is acceptable.
 */
export function unsafeRegexReason(pattern: string): string | null {
  try {
    new RegExp(pattern);
  } catch (err) {
    return `invalid regular expression: ${(err as Error).message}`;
  }
  interface Frame {
    quantified: boolean;
    alternation: boolean;
  }
  const stack: Frame[] = [{ quantified: false, alternation: false }];
  const top = () => stack[stack.length - 1] as Frame;
  let i = 0;
  while (i < pattern.length) {
    const ch = pattern[i];
    if (ch === "\\") {
      const next = pattern[i + 1] ?? "";
      if (/[1-9]/.test(next) || next === "k") return "backreferences are not allowed";
      i += 2;
    } else if (ch === "[") {
      i++;
      if (pattern[i] === "^") i++;
      if (pattern[i] === "]") i++;
      while (i < pattern.length && pattern[i] !== "]") i += pattern[i] === "\\" ? 2 : 1;
      i++;
    } else if (ch === "(") {
      stack.push({ quantified: false, alternation: false });
      i++;
      // Group prefixes (?: (?= (?! (?<= (?<! (?<name> are not quantifiers.
      if (pattern[i] === "?") {
        i++;
        if (pattern[i] === "<" && pattern[i + 1] !== "=" && pattern[i + 1] !== "!") {
          while (i < pattern.length && pattern[i] !== ">") i++;
        }
        i++;
      }
    } else if (ch === ")") {
      const group = stack.length > 1 ? (stack.pop() as Frame) : { quantified: false, alternation: false };
      i++;
      const q = quantifierAt(pattern, i);
      if (q.repeats && (group.quantified || group.alternation)) {
        return "a repeated group must not contain a quantifier or an alternation (it can backtrack exponentially); use a simpler pattern, or startsWith/endsWith/contains";
      }
      i += q.length;
      const parent = top();
      parent.quantified ||= group.quantified || q.length > 0;
      parent.alternation ||= group.alternation;
    } else if (ch === "|") {
      top().alternation = true;
      i++;
    } else {
      const q = quantifierAt(pattern, i);
      if (q.length > 0) {
        top().quantified = true;
        i += q.length;
      } else i++;
    }
  }
  return null;
}

/** The quantifier starting at `i` (with its lazy `?`), and whether it can repeat more than once. */
function quantifierAt(p: string, i: number): { length: number; repeats: boolean } {
  const ch = p[i];
  let length = 0;
  let repeats = false;
  if (ch === "*" || ch === "+") {
    length = 1;
    repeats = true;
  } else if (ch === "?") {
    length = 1;
  } else if (ch === "{") {
    const m = /^\{(\d+)(,(\d*))?\}/.exec(p.slice(i));
    if (m) {
      length = m[0].length;
      const max = m[2] === undefined ? Number(m[1]) : m[3] === "" ? Number.POSITIVE_INFINITY : Number(m[3]);
      repeats = max > 1;
    }
  }
  if (length > 0 && p[i + length] === "?") length++;
  return { length, repeats };
}
