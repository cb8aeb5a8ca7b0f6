/** Refresh this long before expiry: 10% of the lifetime, at least 30 s. */
const MARGIN_FRACTION = 0.1;
const MIN_MARGIN_MS = 30_000;

/**
 * When to refresh a token that lives from `issuedAt` to `expiresAt` (epoch ms): 10% of its
 * lifetime before expiry, at least 30 s before; for tokens that live under a minute the margin is
 * capped at half the lifetime, so a 4 s test token is refreshed after 2 s, never after expiry.
 */
export function refreshAt(issuedAt: number, expiresAt: number): number {
  const lifetime = Math.max(0, expiresAt - issuedAt);
  const margin = Math.min(Math.max(lifetime * MARGIN_FRACTION, MIN_MARGIN_MS), lifetime / 2);
  return expiresAt - margin;
}
