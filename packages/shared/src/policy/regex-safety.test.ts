import { describe, expect, it } from "vitest";
import { unsafeRegexReason } from "./regex-safety.js";

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
      "(?<name>ab)c",
      "^(ab){3}$",
    ]) {
      expect(unsafeRegexReason(p), p).toBeNull();
    }
  });

  it("refuses exponential shapes and backreferences", () => {
    for (const p of [
      "(a+)+$",
      "(a*)*b",
      "(a|aa)*$",
      "((ab)*)+",
      "(?:a+){2,}",
      "(a?){10}",
      "(\\w+\\s?)*$",
      "(x+x+)+y",
      "(a)\\1",
      "(?<n>a)\\k<n>",
    ]) {
      expect(unsafeRegexReason(p), p).not.toBeNull();
    }
  });

  it("refuses invalid patterns", () => {
    expect(unsafeRegexReason("(unclosed")).toMatch(/invalid regular expression/);
    expect(unsafeRegexReason("[z-a]")).toMatch(/invalid regular expression/);
  });
});
