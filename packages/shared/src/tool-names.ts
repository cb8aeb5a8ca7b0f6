/**
 * Names and URIs as an agent sees them on the aggregate endpoint `/t/{tenant}/mcp`: tool and prompt
 * names get the upstream's `toolPrefix`, resource URIs (and URI templates) are wrapped in a
 * `gatehouse://{upstream}/…` envelope so they stay unique across upstreams and map back exactly.
 */

/** URI scheme of namespaced resource URIs. */
export const RESOURCE_NAMESPACE_SCHEME = "gatehouse";

/** Prefixes a tool or prompt name with the upstream's tool prefix. */
export function prefixName(prefix: string, name: string): string {
  return `${prefix}${name}`;
}

/**
 * Strips `prefix` from a prefixed name; null when the name does not carry it (or is the bare prefix).
 */
export function unprefixName(prefix: string, prefixed: string): string | null {
  if (!prefixed.startsWith(prefix) || prefixed.length === prefix.length) return null;
  return prefixed.slice(prefix.length);
}

/** Wraps an upstream resource URI (or URI template) so it names its upstream: `gatehouse://{upstream}/{uri}`. */
export function namespaceUri(upstream: string, uri: string): string {
  return `${RESOURCE_NAMESPACE_SCHEME}://${upstream}/${uri}`;
}

/** Reverses `namespaceUri`; null when the URI is not a gateway-namespaced one. */
export function parseNamespacedUri(uri: string): { upstream: string; uri: string } | null {
  const head = `${RESOURCE_NAMESPACE_SCHEME}://`;
  if (!uri.startsWith(head)) return null;
  const rest = uri.slice(head.length);
  const slash = rest.indexOf("/");
  if (slash <= 0 || slash === rest.length - 1) return null;
  return { upstream: rest.slice(0, slash), uri: rest.slice(slash + 1) };
}
