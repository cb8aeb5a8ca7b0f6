import type { Page, PaginationQuery } from "@gatehouse/shared";

/**
 * Prisma arguments for one page, newest first. Ids are UUIDv7, so they sort by creation time and
 * the cursor is simply the last id seen. One extra row tells whether there is a next page.
 */
export function pageArgs(query: PaginationQuery) {
  return {
    where: query.cursor ? { id: { lt: query.cursor } } : {},
    orderBy: { id: "desc" as const },
    take: query.limit + 1,
  };
}

export function toPage<Row extends { id: string }, View>(
  rows: Row[],
  query: PaginationQuery,
  view: (row: Row) => View,
): Page<View> {
  const more = rows.length > query.limit;
  const items = more ? rows.slice(0, query.limit) : rows;
  return { items: items.map(view), nextCursor: more ? (items.at(-1)?.id ?? null) : null };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether a path segment can be an id (a database lookup by a non-UUID would fail, not miss). */
export function isUuid(s: string): boolean {
  return UUID.test(s);
}

export function iso(d: Date): string;
export function iso(d: Date | null): string | null;
export function iso(d: Date | null): string | null {
  return d ? d.toISOString() : null;
}
