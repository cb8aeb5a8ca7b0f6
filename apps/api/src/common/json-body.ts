import { AppError, ErrorCode } from "@gatehouse/shared";
import type { FastifyInstance } from "fastify";

const JSON_TYPE = /^application\/([a-z0-9.+-]+\+)?json\s*(;|$)/i;

/**
 * Every body the API takes is JSON. A body sent without `Content-Type: application/json` (curl's
 * `-d` alone sends a form type) would otherwise be parsed as something else and fail validation
 * with a misleading list of "missing" fields; answer 415 naming the header instead.
 */
export function requireJsonBodies(fastify: FastifyInstance): void {
  fastify.addHook("onRequest", async (request, reply) => {
    if (request.method !== "POST" && request.method !== "PUT" && request.method !== "PATCH") return;
    const length = request.headers["content-length"];
    const hasBody =
      (length !== undefined && length !== "0") || request.headers["transfer-encoding"] !== undefined;
    if (!hasBody) return;
    const type = request.headers["content-type"];
    if (type && JSON_TYPE.test(type)) return;
    const problem = new AppError(
      ErrorCode.UNSUPPORTED_MEDIA_TYPE,
      type
        ? `The request body is sent as ${type.split(";")[0]}; send JSON with the header Content-Type: application/json`
        : "The request body has no Content-Type; send JSON with the header Content-Type: application/json",
      [{ path: "(header) Content-Type", message: "Must be application/json" }],
    );
    return reply
      .status(problem.httpStatus)
      .header("content-type", "application/json; charset=utf-8")
      .send(problem.toProblem());
  });
}
