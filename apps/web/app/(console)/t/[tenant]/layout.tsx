import type { ReactNode } from "react";
import { TenantNav } from "@/components/tenant-nav";
import { getTenantAccess } from "@/lib/api";

export default async function TenantLayout({
  children,
  params,
}: {
  children: ReactNode;
  params: Promise<{ tenant: string }>;
}) {
  const { tenant: ref } = await params;
  const { tenant, role } = await getTenantAccess(ref);
  return (
    <div className="shell">
      <TenantNav slug={tenant.slug} name={tenant.name} role={role} />
      {children}
    </div>
  );
}
