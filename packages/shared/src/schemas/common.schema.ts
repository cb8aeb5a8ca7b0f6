import { z } from "zod";

/** One bad field of a request: `path` like `auth.token` or `rules[1].when`, `""` for the whole body. */
export interface FieldError {
  path: string;
  message: string;
}

/** Turns zod issues into `details` for a VALIDATION_FAILED problem, one entry per bad field. */
export function zodIssuesToDetails(
  issues: readonly z.core.$ZodIssue[],
  prefix: readonly PropertyKey[] = [],
): FieldError[] {
  const details: FieldError[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys)
        details.push({ path: joinPath([...path, key]), message: "Unknown field" });
      continue;
    }
    details.push({ path: joinPath(path), message: humanMessage(issue) });
  }
  return details;
}

/** `["rules", 1, "when"]` → `rules[1].when`, the notation the policy compiler uses too. */
function joinPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else out += out ? `.${String(segment)}` : String(segment);
  }
  return out;
}

function humanMessage(issue: z.core.$ZodIssue): string {
  if (issue.code === "invalid_type" && issue.message.endsWith("received undefined")) return "Required";
  return issue.message;
}

/** `?limit=&cursor=` of every list: newest first, `cursor` is the last id of the previous page. */
export const PaginationQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.uuid().optional(),
});
export type PaginationQuery = z.infer<typeof PaginationQuerySchema>;

/** A page of a list. */
export interface Page<T> {
  items: T[];
  /** Pass as `cursor` to get the next page; null on the last one. */
  nextCursor: string | null;
}

/** Wraps an item schema into the `{items, nextCursor}` page schema (for docs and clients). */
export function pageSchema<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item), nextCursor: z.string().nullable() });
}

/** What responses show instead of a stored secret. Sending it back in a PATCH keeps the stored value. */
export const SECRET_MASK = "********";

/** ISO 8601 timestamp with offset, e.g. `2030-01-01T00:00:00Z`. */
export const TimestampSchema = z.iso.datetime({ offset: true });

/** Free-text names shown to people. */
export const DisplayNameSchema = z.string().trim().min(1).max(100);

/** The REST error body of api.md. */
export const ProblemSchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.unknown().optional(),
  }),
});
