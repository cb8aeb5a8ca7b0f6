import { cookies } from "next/headers";
import Link from "next/link";
import type { ReactNode } from "react";
import { CsrfProvider } from "@/components/csrf";
import { getMe } from "@/lib/api";
import { setTheme, signOut, signOutEverywhere } from "./actions";

export const dynamic = "force-dynamic";

export default async function ConsoleLayout({ children }: { children: ReactNode }) {
  const me = await getMe();
  const csrf = me.session?.csrfToken ?? "";
  const theme = (await cookies()).get("theme")?.value ?? "system";
  const who = me.user?.email ?? me.user?.name ?? "signed in";
  return (
    <CsrfProvider token={csrf}>
      <header className="topbar">
        <Link href="/tenants" className="brand">
          Gatehouse
        </Link>
        <span className="who">
          {who}
          {me.platformAdmin && who !== "Platform admin" ? " · platform admin" : ""}
        </span>
        <form action={setTheme} className="actions" aria-label="Theme">
          <label htmlFor="theme" className="sr-only">
            Theme
          </label>
          <select id="theme" name="theme" defaultValue={theme}>
            <option value="system">System theme</option>
            <option value="light">Light</option>
            <option value="dark">Dark</option>
          </select>
          <button type="submit" className="button secondary small">
            Apply
          </button>
        </form>
        <form action={signOut}>
          <input type="hidden" name="csrf" value={csrf} />
          <button type="submit" className="button secondary small">
            Sign out
          </button>
        </form>
        <form action={signOutEverywhere}>
          <input type="hidden" name="csrf" value={csrf} />
          <button type="submit" className="button secondary small">
            Sign out everywhere
          </button>
        </form>
      </header>
      {children}
    </CsrfProvider>
  );
}
