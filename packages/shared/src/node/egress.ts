import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { z } from "zod";

/**
 * The egress policy for every outbound request Gatehouse makes on an admin's say-so (upstream
 * URLs, identity providers, OAuth endpoints). Link-local addresses, where clouds serve instance
 * metadata and credentials, are always refused; loopback and private ranges are allowed unless
 * the operator sets `EGRESS_ALLOW_PRIVATE_NETWORKS=false` (a shared SaaS); `EGRESS_ALLOW_HOSTS`
 * names hosts that are always allowed.
 */
export interface EgressPolicy {
  allowPrivateNetworks: boolean;
  /** Lower-case host names or IP literals, exact match. */
  allowHosts: ReadonlySet<string>;
}

const unset = (v: unknown) => (v === "" ? undefined : v);

/** The egress variables, merged into each app's environment schema. */
export const EgressEnvSchema = z.object({
  EGRESS_ALLOW_PRIVATE_NETWORKS: z.preprocess(
    unset,
    z.stringbool({ error: "Must be true or false" }).default(true),
  ),
  EGRESS_ALLOW_HOSTS: z.preprocess(unset, z.string().default("")),
});

/** The policy from parsed egress variables. */
export function egressPolicy(env: Partial<z.infer<typeof EgressEnvSchema>>): EgressPolicy {
  const hosts = (env.EGRESS_ALLOW_HOSTS ?? "")
    .split(",")
    .map((h) =>
      h
        .trim()
        .toLowerCase()
        .replace(/^\[|\]$/g, ""),
    )
    .filter(Boolean);
  return { allowPrivateNetworks: env.EGRESS_ALLOW_PRIVATE_NETWORKS ?? true, allowHosts: new Set(hosts) };
}

/** Why Gatehouse will not connect to `address` (an IP literal), or null when it may. */
export function refusedAddressReason(address: string, policy: EgressPolicy): string | null {
  const ip = unmapIPv4(address.toLowerCase().replace(/^\[|\]$/g, ""));
  const v4 = isIP(ip) === 4 ? ip.split(".").map(Number) : null;
  if (v4) {
    const [a, b] = v4 as [number, number];
    if (a === 169 && b === 254) return "a link-local address (cloud metadata) is never reachable";
    if (a === 0) return "the unspecified network 0.0.0.0/8 is never reachable";
    const priv =
      a === 127 ||
      a === 10 ||
      (a === 172 && b >= 16 && b <= 31) ||
      (a === 192 && b === 168) ||
      (a === 100 && b >= 64 && b <= 127);
    if (priv && !policy.allowPrivateNetworks)
      return "a loopback or private address, refused by EGRESS_ALLOW_PRIVATE_NETWORKS=false";
    return null;
  }
  if (isIP(ip) === 6) {
    const first = Number.parseInt(ip.split(":")[0] || "0", 16);
    if ((first & 0xffc0) === 0xfe80) return "a link-local address is never reachable";
    if (ip === "fd00:ec2::254") return "a cloud metadata address is never reachable";
    if (ip === "::") return "the unspecified address is never reachable";
    const priv = ip === "::1" || (first & 0xfe00) === 0xfc00;
    if (priv && !policy.allowPrivateNetworks)
      return "a loopback or private address, refused by EGRESS_ALLOW_PRIVATE_NETWORKS=false";
    return null;
  }
  return "not an IP address";
}

/** `::ffff:169.254.169.254` (and its hex form `::ffff:a9fe:a9fe`) → `169.254.169.254`. */
function unmapIPv4(ip: string): string {
  const dotted = /^(?:0{0,4}:){0,5}:?ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(ip);
  if (dotted) return dotted[1] as string;
  const hex = /^(?:0{0,4}:){0,5}:?ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(ip);
  if (hex) {
    const hi = Number.parseInt(hex[1] as string, 16);
    const lo = Number.parseInt(hex[2] as string, 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return ip;
}

/**
 * Checks a URL an admin gave, before it is saved: its host (an IP literal, or every address its
 * name resolves to now) must be allowed. Returns why not, or null. A name that does not resolve
 * here is not refused at save (it may resolve where it is used; it is checked again there).
 */
export async function refusedUrlReason(url: string, policy: EgressPolicy): Promise<string | null> {
  let host: string;
  try {
    host = new URL(url).hostname.toLowerCase().replace(/^\[|\]$/g, "");
  } catch {
    return "not a valid URL";
  }
  if (policy.allowHosts.has(host)) return null;
  if (isIP(host)) {
    const why = refusedAddressReason(host, policy);
    return why ? `${host} is ${why}` : null;
  }
  let addresses: { address: string }[];
  try {
    addresses = await lookup(host, { all: true, verbatim: true });
  } catch {
    return null;
  }
  for (const { address } of addresses) {
    const why = refusedAddressReason(address, policy);
    if (why) return `${host} resolves to ${address}, ${why}`;
  }
  return null;
}
