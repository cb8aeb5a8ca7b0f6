import { AuditEventViewSchema, pageSchema } from "@gatehouse/shared";
import type { SchemaObject } from "@nestjs/swagger";
import { z } from "zod";

// Generated from the zod schema like the components of common/openapi.ts, inline here.
export const AuditEventPageOpenApi = z.toJSONSchema(pageSchema(AuditEventViewSchema), {
  target: "openapi-3.0",
  io: "output",
  unrepresentable: "any",
}) as SchemaObject;
