import { cookies } from "next/headers";

/**
 * Relays the API's `Set-Cookie` headers (session, OIDC flow) to the browser, on the console's own
 * origin, keeping the API's attributes (HttpOnly, SameSite, Secure, Max-Age).
 */
export async function relayCookies(response: Response): Promise<void> {
  const jar = await cookies();
  for (const header of response.headers.getSetCookie()) {
    const [pair = "", ...attrs] = header.split(";").map((s) => s.trim());
    const i = pair.indexOf("=");
    if (i <= 0) continue;
    const name = pair.slice(0, i);
    const value = pair.slice(i + 1);
    const attr = (key: string) => attrs.find((a) => a.toLowerCase().startsWith(key.toLowerCase()));
    const maxAge = Number(attr("Max-Age=")?.split("=")[1] ?? Number.NaN);
    jar.set(name, value, {
      path: attr("Path=")?.split("=")[1] ?? "/",
      httpOnly: attr("HttpOnly") !== undefined,
      secure: attr("Secure") !== undefined,
      sameSite: "lax",
      ...(Number.isFinite(maxAge) ? { maxAge } : {}),
    });
  }
}
