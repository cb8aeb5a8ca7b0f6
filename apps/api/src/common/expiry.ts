import { AppError, ErrorCode } from "@gatehouse/shared";

/** `expiresAt` of a new key or token: absent, or strictly in the future. */
export function futureDate(value: string | undefined, field = "expiresAt"): Date | null {
  if (value === undefined) return null;
  const date = new Date(value);
  if (date.getTime() <= Date.now()) {
    throw new AppError(ErrorCode.VALIDATION_FAILED, `Invalid request body: check ${field}`, [
      { path: field, message: "Must be in the future" },
    ]);
  }
  return date;
}
