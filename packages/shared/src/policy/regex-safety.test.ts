import { describe, expect, it } from "vitest";
import { re2Matches, unsafeRegexReason } from "./regex-safety.js";

describe("unsafeRegexReason", () => {
  it("accepts ordinary patterns", () => {
    for (const p of [
      "^/srv/",
      "^get_[a-z_]+$",
      "^(get|list)_.*$",
      "\\.txt$",
      "^[a-z0-9._%+-]+@corp\\.com$",
      "(ab)?c+",
      "^a{2,3}$",
      "(?:x)+",
      "[(]+[)]*",
      "(?P<name>ab)c",
      "^(ab){3}$",
    ]) {
      expect(unsafeRegexReason(p), p).toBeNull();
    }
  });

  it("accepts the shapes that backtrack on JavaScript's engine: RE2 matches them in linear time", () => {
    for (const p of ["(a+)+$", "(a*)*b", "(a|aa)*$", "(\\w+\\s?)*$", `${".*a".repeat(20)}.*b`]) {
      expect(unsafeRegexReason(p), p).toBeNull();
      expect(re2Matches(`${"a".repeat(4096)}!`, `^(?:${p})$`), p).toBe(false);
    }
  });

  it("refuses backreferences, lookaround, huge repeats and invalid patterns", () => {
    for (const p of [
      "(a)\\1",
      "(?<n>a)\\k<n>",
      "(?=x)",
      "(?!x)",
      "((a{100}){100}){100}",
      "(unclosed",
      "[z-a]",
    ]) {
      expect(unsafeRegexReason(p), p).toMatch(/invalid regular expression/);
    }
  });
});

describe("re2Matches", () => {
  it("finds the pattern anywhere in the string, like CEL's matches()", () => {
    expect(re2Matches("/srv/data", "^/srv/")).toBe(true);
    expect(re2Matches("x/srv/", "^/srv/")).toBe(false);
    expect(re2Matches("hello world", "o w")).toBe(true);
    expect(re2Matches("a\nb", "^a.b$")).toBe(false);
  });
});
