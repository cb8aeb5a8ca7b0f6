import { z } from "zod";
import { defineJob } from "../jobs/job.types.js";

/**
 * Refreshes (or, for client credentials, first obtains) one credential's tokens. Payload
 * `generation` is the token generation the job was meant for: a job for an old generation finds
 * the work done and returns. Ids: `sched.<credential>.<generation>` for the refresh scheduled
 * before expiry, `now.<credential>.<generation>.<bucket>` for on-demand ones (a 401 at a
 * gateway, an admin's request), so many requests for one stale token make one job.
 */
export const CredentialRefreshJob = defineJob({
  name: "credential-refresh",
  payload: z.strictObject({ credentialId: z.uuid(), generation: z.number().int().min(0) }),
  attempts: 6,
  backoffMs: 1_000,
  timeoutMs: 30_000,
  concurrency: 8,
  retainMs: 3600_000,
});

/** Lists an upstream's tools and stores the catalog. Id `discover.<upstream>.<interval bucket>`. */
export const UpstreamDiscoveryJob = defineJob({
  name: "upstream-discovery",
  payload: z.strictObject({ upstreamId: z.uuid() }),
  attempts: 3,
  backoffMs: 5_000,
  timeoutMs: 45_000,
  concurrency: 4,
  retainMs: 2 * 3600_000,
});

/** Connects to an upstream and pings it. Id `health.<upstream>.<interval bucket>`. */
export const UpstreamHealthJob = defineJob({
  name: "upstream-health",
  payload: z.strictObject({ upstreamId: z.uuid() }),
  attempts: 1,
  backoffMs: 1_000,
  timeoutMs: 20_000,
  concurrency: 8,
  retainMs: 3600_000,
});

/**
 * Heals everything a lost message or a dead worker could leave behind: schedules missing
 * refreshes and first client-credentials tokens, enqueues due discovery and health jobs, drops
 * expired connect states. For one tenant after a config change (`tenant.<id>.<version>`), or for
 * all of them once per minute (`all.<minute>`), whichever worker gets there first.
 */
export const ReconcileJob = defineJob({
  name: "reconcile",
  payload: z.strictObject({ tenantId: z.uuid().optional() }),
  attempts: 3,
  backoffMs: 2_000,
  timeoutMs: 120_000,
  concurrency: 1,
  retainMs: 3600_000,
});

export const credentialGroup = (credentialId: string) => `credential.${credentialId}`;
export const upstreamGroup = (upstreamId: string) => `upstream.${upstreamId}`;
