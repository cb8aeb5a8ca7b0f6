/** A compiled glob: `*` matches any run of characters (including none), `?` exactly one. */
export interface Glob {
  readonly pattern: string;
  /** True when the pattern matches every string (`*`, `**`, …), so callers can skip the test. */
  readonly matchesAll: boolean;
  test(value: string): boolean;
}

/**
 * Compiles a glob (`*`, `?`, everything else literal) into an anchored matcher, once.
 *
 * No regular expression: a glob compiled to one (`*a*a*a…*b` → `^.*a.*a.*a….*b$`) backtracks
 * polynomially in the number of stars, and one tenant's pattern then stalls a node shared by all.
 * Here the pattern is split at its stars into segments; the first must match at the start, the last
 * at the end, and each middle one at its leftmost place after the previous one. Leftmost is always
 * right for `*` (a later place only leaves less room for the rest), so nothing is ever retried and
 * a test costs at most O(value length × pattern length).
 */
export function compileGlob(pattern: string): Glob {
  if (/^\*+$/.test(pattern)) return { pattern, matchesAll: true, test: () => true };
  if (!isGlob(pattern)) return { pattern, matchesAll: false, test: (value) => value === pattern };
  // Runs of `*` are one `*`: `a**b` has the segments ["a", "b"].
  const segments = pattern.split(/\*+/);
  if (!pattern.includes("?")) {
    return { pattern, matchesAll: false, test: (value) => matchLiteralSegments(segments, value) };
  }
  // `?` is one code point, not one UTF-16 unit, so these globs work on code points.
  const points = segments.map((s) => Array.from(s));
  return { pattern, matchesAll: false, test: (value) => matchSegments(points, Array.from(value)) };
}

/** True when the string contains glob wildcards. */
export function isGlob(pattern: string): boolean {
  return pattern.includes("*") || pattern.includes("?");
}

/** Segments without `?`: plain string search (`segments` has at least two entries: there was a `*`). */
function matchLiteralSegments(segments: string[], value: string): boolean {
  const first = segments[0] as string;
  const last = segments[segments.length - 1] as string;
  if (!value.startsWith(first)) return false;
  let pos = first.length;
  const end = value.length - last.length;
  if (end < pos || !value.endsWith(last)) return false;
  for (let i = 1; i < segments.length - 1; i++) {
    const seg = segments[i] as string;
    const at = value.indexOf(seg, pos);
    if (at < 0 || at + seg.length > end) return false;
    pos = at + seg.length;
  }
  return true;
}

/** The same on code points, where `?` in a segment matches any one of them. */
function matchSegments(segments: string[][], value: string[]): boolean {
  const first = segments[0] as string[];
  if (segments.length === 1) return first.length === value.length && segmentAt(first, value, 0);
  const last = segments[segments.length - 1] as string[];
  let pos = first.length;
  const end = value.length - last.length;
  if (end < pos || !segmentAt(first, value, 0) || !segmentAt(last, value, end)) return false;
  for (let i = 1; i < segments.length - 1; i++) {
    const seg = segments[i] as string[];
    let at = pos;
    while (at + seg.length <= end && !segmentAt(seg, value, at)) at++;
    if (at + seg.length > end) return false;
    pos = at + seg.length;
  }
  return true;
}

function segmentAt(seg: string[], value: string[], at: number): boolean {
  for (let j = 0; j < seg.length; j++) {
    if (seg[j] !== "?" && seg[j] !== value[at + j]) return false;
  }
  return true;
}
