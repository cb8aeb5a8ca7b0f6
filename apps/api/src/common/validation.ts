import { AppError, ErrorCode, zodIssuesToDetails } from "@gatehouse/shared";
import type { PipeTransform } from "@nestjs/common";
import type { z } from "zod";

/** Parses `value` with `schema`, or throws VALIDATION_FAILED naming every bad field. */
export function validate<T extends z.ZodType>(schema: T, value: unknown, what = "request body"): z.output<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const details = zodIssuesToDetails(result.error.issues);
  const fields = [...new Set(details.map((d) => d.path || "(body)"))];
  throw new AppError(ErrorCode.VALIDATION_FAILED, `Invalid ${what}: check ${fields.join(", ")}`, details);
}

/** Validates a body at the edge: `@Body(new ZodBody(Schema)) body: T`. */
export class ZodBody<T extends z.ZodType> implements PipeTransform<unknown, z.output<T>> {
  constructor(private readonly schema: T) {}

  transform(value: unknown): z.output<T> {
    if (value === undefined || value === null || typeof value !== "object" || Array.isArray(value)) {
      throw new AppError(
        ErrorCode.VALIDATION_FAILED,
        "Send a JSON object as the request body, with Content-Type: application/json",
        [{ path: "", message: value === undefined || value === null ? "Required" : "Must be a JSON object" }],
      );
    }
    return validate(this.schema, value);
  }
}

/** Validates the query string: `@Query(new ZodQuery(Schema)) query: T`. */
export class ZodQuery<T extends z.ZodType> implements PipeTransform<unknown, z.output<T>> {
  constructor(private readonly schema: T) {}

  transform(value: unknown): z.output<T> {
    return validate(this.schema, value ?? {}, "query");
  }
}
