import { describe, expect, it } from "vitest";
import { egressPolicy, refusedAddressReason, refusedUrlReason } from "./egress.js";

const open = egressPolicy({});
const saas = egressPolicy({
  EGRESS_ALLOW_PRIVATE_NETWORKS: false,
  EGRESS_ALLOW_HOSTS: "internal.example, 10.0.0.5",
});

describe("egress policy", () => {
  it("always refuses link-local and cloud metadata addresses, also IPv4-mapped", () => {
    for (const a of [
      "169.254.169.254",
      "169.254.0.1",
      "fe80::1",
      "fd00:ec2::254",
      "::ffff:169.254.169.254",
      "::ffff:a9fe:a9fe",
      "0.0.0.0",
      "::",
    ]) {
      expect(refusedAddressReason(a, open), a).not.toBeNull();
      expect(refusedAddressReason(a, saas), a).not.toBeNull();
    }
  });

  it("allows loopback and private ranges by default, refuses them with EGRESS_ALLOW_PRIVATE_NETWORKS=false", () => {
    for (const a of [
      "127.0.0.1",
      "10.1.2.3",
      "172.16.0.1",
      "192.168.1.1",
      "::1",
      "fd12::1",
      "::ffff:127.0.0.1",
      "100.64.0.1",
    ]) {
      expect(refusedAddressReason(a, open), a).toBeNull();
      expect(refusedAddressReason(a, saas), a).toMatch(/EGRESS_ALLOW_PRIVATE_NETWORKS/);
    }
    expect(refusedAddressReason("93.184.215.14", saas)).toBeNull();
    expect(refusedAddressReason("2606:4700::1", saas)).toBeNull();
  });

  it("checks URLs by literal address and by every address a name resolves to; EGRESS_ALLOW_HOSTS wins", async () => {
    expect(await refusedUrlReason("http://169.254.169.254/latest/meta-data", open)).toMatch(/link-local/);
    expect(await refusedUrlReason("http://[::ffff:169.254.169.254]/", open)).toMatch(/link-local/);
    expect(await refusedUrlReason("http://localhost:8080/mcp", open)).toBeNull();
    expect(await refusedUrlReason("http://localhost:8080/mcp", saas)).toMatch(/localhost resolves to/);
    expect(await refusedUrlReason("http://10.0.0.5/mcp", saas)).toBeNull();
    expect(await refusedUrlReason("http://internal.example/mcp", saas)).toBeNull();
  });
});
