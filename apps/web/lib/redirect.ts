import { NextResponse } from "next/server";

/**
 * A 303 to a path of the console, as a relative Location: the browser resolves it against the
 * address it used (request.url inside Next names the server's own bind address, e.g. localhost,
 * whose cookies are not the browser's).
 */
export function seeOther(path: string): NextResponse {
  return new NextResponse(null, { status: 303, headers: { location: path } });
}
