import { describe, expect, it } from "vitest";
import { refreshAt } from "./refresh-schedule.js";

describe("refreshAt", () => {
  const t0 = 1_000_000;
  it("refreshes an hour-long token 6 minutes early (10%)", () => {
    expect(refreshAt(t0, t0 + 3600_000)).toBe(t0 + 3600_000 - 360_000);
  });
  it("keeps at least 30 s of margin", () => {
    expect(refreshAt(t0, t0 + 120_000)).toBe(t0 + 90_000);
  });
  it("caps the margin at half the lifetime for second-scale tokens", () => {
    expect(refreshAt(t0, t0 + 4_000)).toBe(t0 + 2_000);
    expect(refreshAt(t0, t0 + 40_000)).toBe(t0 + 20_000);
  });
  it("is never after expiry, even for an already expired token", () => {
    expect(refreshAt(t0, t0 - 5_000)).toBe(t0 - 5_000);
    expect(refreshAt(t0, t0)).toBe(t0);
  });
});
