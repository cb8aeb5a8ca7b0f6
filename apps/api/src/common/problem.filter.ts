import { AppError, ErrorCode, zodIssuesToDetails } from "@gatehouse/shared";
import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException } from "@nestjs/common";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Logger } from "pino";
import { ZodError } from "zod";

interface Problem {
  status: number;
  code: ErrorCode;
  message: string;
  details?: unknown;
}

/**
 * The one place errors become HTTP answers: always `{"error": {code, message, details}}` (api.md)
 * with the status of the code. Unknown errors are logged with the request id and shown as INTERNAL.
 */
@Catch()
export class ProblemFilter implements ExceptionFilter {
  constructor(private readonly log: Logger) {}

  catch(err: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    const problem = toProblem(err, request, this.log);
    if (problem.code === ErrorCode.UNAUTHENTICATED)
      reply.header("www-authenticate", 'Bearer realm="gatehouse"');
    void reply
      .status(problem.status)
      .header("content-type", "application/json; charset=utf-8")
      .send({
        error: {
          code: problem.code,
          message: problem.message,
          ...(problem.details === undefined ? {} : { details: problem.details }),
        },
      });
  }
}

const FALLBACK_CODES: Record<number, ErrorCode> = {
  400: ErrorCode.INVALID_REQUEST,
  401: ErrorCode.UNAUTHENTICATED,
  403: ErrorCode.FORBIDDEN,
  404: ErrorCode.NOT_FOUND,
  409: ErrorCode.CONFLICT,
  413: ErrorCode.PAYLOAD_TOO_LARGE,
  422: ErrorCode.UNPROCESSABLE,
  429: ErrorCode.RATE_LIMITED,
  503: ErrorCode.SERVICE_UNAVAILABLE,
};

export function toProblem(err: unknown, request: FastifyRequest, log: Logger): Problem {
  if (err instanceof AppError) {
    return { status: err.httpStatus, code: err.code, message: err.message, details: err.details };
  }
  if (err instanceof ZodError) {
    return {
      status: 400,
      code: ErrorCode.VALIDATION_FAILED,
      message: "Invalid request",
      details: zodIssuesToDetails(err.issues),
    };
  }
  const prisma = prismaProblem(err);
  if (prisma) return prisma;
  if (isDatabaseUnavailable(err)) {
    log.warn({ reqId: request.id, err: (err as Error).message?.split("\n").pop() }, "database unavailable");
    return {
      status: 503,
      code: ErrorCode.SERVICE_UNAVAILABLE,
      message: "The database is unreachable; retry shortly (gateways go on serving meanwhile).",
    };
  }

  // Framework errors: no route, body that is not JSON, too large, wrong content type.
  const status = httpStatusOfFrameworkError(err);
  if (status && status < 500) {
    const message = err instanceof Error ? err.message : "Bad request";
    if (status === 404) {
      return {
        status,
        code: ErrorCode.NOT_FOUND,
        message: `No route ${request.method} ${request.url.split("?")[0]}`,
      };
    }
    if (status === 400 && /JSON/i.test(message)) {
      return { status, code: ErrorCode.PARSE_ERROR, message: "The request body is not valid JSON" };
    }
    if (status === 413) {
      return { status, code: ErrorCode.PAYLOAD_TOO_LARGE, message: "The request body is too large" };
    }
    return { status, code: FALLBACK_CODES[status] ?? ErrorCode.INVALID_REQUEST, message };
  }

  log.error({ err, reqId: request.id }, "unhandled error");
  return {
    status: 500,
    code: ErrorCode.INTERNAL,
    message: `Internal error; the server log has the details under request id ${request.id}`,
  };
}

function httpStatusOfFrameworkError(err: unknown): number | undefined {
  if (err instanceof HttpException) return err.getStatus();
  const status = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === "number" ? status : undefined;
}

interface PrismaKnownError {
  name: string;
  code: string;
  meta?: Record<string, unknown>;
}

function isPrismaKnownError(err: unknown): err is PrismaKnownError {
  return (
    typeof err === "object" &&
    err !== null &&
    (err as { name?: unknown }).name === "PrismaClientKnownRequestError" &&
    typeof (err as { code?: unknown }).code === "string"
  );
}

// Prisma's "cannot reach / lost the server / pool timed out" codes, the driver adapter's kinds for
// the same, and Postgres SQLSTATE classes 08 (connection exception) and 57P (shutting down, starting).
const UNAVAILABLE_CODES = new Set(["P1001", "P1002", "P1008", "P1017", "P2024"]);
const UNAVAILABLE_KINDS = new Set([
  "DatabaseNotReachable",
  "ConnectionClosed",
  "SocketTimeout",
  "TooManyConnections",
]);

/** True when the error says the database is away (down, restarting, unreachable), not that the query is wrong. */
function isDatabaseUnavailable(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return false;
  const e = err as {
    name?: unknown;
    code?: unknown;
    meta?: { driverAdapterError?: { cause?: Record<string, unknown> } };
  };
  if (typeof e.name !== "string" || !e.name.startsWith("PrismaClient")) return false;
  if (typeof e.code === "string" && UNAVAILABLE_CODES.has(e.code)) return true;
  const cause = e.meta?.driverAdapterError?.cause;
  if (typeof cause?.kind === "string" && UNAVAILABLE_KINDS.has(cause.kind)) return true;
  const sqlState =
    typeof cause?.originalCode === "string"
      ? cause.originalCode
      : typeof cause?.code === "string"
        ? cause.code
        : "";
  return /^(08|57P0)/.test(sqlState);
}

/** P2002 (unique) → 409 naming the field, P2025 (record missing) → 404, SQLSTATE 22xxx (bad value) → 400. */
function prismaProblem(err: unknown): Problem | undefined {
  if (!isPrismaKnownError(err)) return undefined;
  if (err.code === "P2002") {
    const fields = uniqueFields(err.meta).filter((f) => f !== "tenantId");
    const what = fields.length > 0 ? fields.join(", ") : "value";
    return {
      status: 409,
      code: ErrorCode.CONFLICT,
      message: `The ${what} is already taken; choose another`,
      details: fields.map((path) => ({ path, message: "Already taken" })),
    };
  }
  if (err.code === "P2025") {
    return { status: 404, code: ErrorCode.NOT_FOUND, message: "Not found" };
  }
  // SQLSTATE class 22 (data exception): a value from the request the database cannot hold, such as
  // a NUL character in a path segment. The caller's input, not a bug.
  const cause = (err.meta?.driverAdapterError as { cause?: { originalCode?: unknown } } | undefined)?.cause;
  if (typeof cause?.originalCode === "string" && cause.originalCode.startsWith("22")) {
    return {
      status: 400,
      code: ErrorCode.INVALID_REQUEST,
      message:
        "The request holds a value that cannot be stored or looked up (such as a NUL character); remove it",
    };
  }
  return undefined;
}

/** The unique fields of a P2002, wherever this Prisma version and driver adapter put them. */
function uniqueFields(meta: Record<string, unknown> | undefined): string[] {
  if (!meta) return [];
  const target = meta.target;
  if (Array.isArray(target)) return target.map(String);
  if (typeof target === "string") return [target];
  const cause = (
    meta.driverAdapterError as {
      cause?: { constraint?: { fields?: unknown; index?: unknown }; table?: unknown };
    }
  )?.cause;
  const fields = cause?.constraint?.fields;
  if (Array.isArray(fields)) return fields.map((f) => String(f).replace(/^"|"$/g, ""));
  // adapter-pg reports only the index, named by Prisma `<Model>_<field>_<field>_key`; fields are camelCase.
  const index = cause?.constraint?.index;
  const table = typeof cause?.table === "string" ? cause.table : String(meta.modelName ?? "");
  if (typeof index === "string" && index.startsWith(`${table}_`) && index.endsWith("_key")) {
    return index
      .slice(table.length + 1, -"_key".length)
      .split("_")
      .filter(Boolean);
  }
  return [];
}
