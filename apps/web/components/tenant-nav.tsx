"use client";
import Link from "next/link";
import { usePathname } from "next/navigation";

const SECTIONS = [
  ["upstreams", "Upstreams"],
  ["keys", "API keys"],
  ["policy", "Policy"],
  ["connect", "Connect an agent"],
  ["members", "Members"],
  ["tokens", "Admin tokens"],
  ["settings", "Settings"],
] as const;

export function TenantNav({ slug, name, role }: { slug: string; name: string; role: string }) {
  const path = usePathname();
  return (
    <nav className="sidenav" aria-label="Tenant">
      <div className="tenant-name">{name}</div>
      <p className="muted" style={{ margin: "0 10px 10px", fontSize: 13 }}>
        Your role: {role === "platform" ? "platform admin" : role}
      </p>
      <ul>
        {SECTIONS.map(([segment, label]) => {
          const href = `/t/${slug}/${segment}`;
          const current = path === href || path.startsWith(`${href}/`);
          return (
            <li key={segment}>
              <Link href={href} aria-current={current ? "page" : undefined}>
                {label}
              </Link>
            </li>
          );
        })}
      </ul>
    </nav>
  );
}
