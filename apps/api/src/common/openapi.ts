import {
  AdminTokenCreatedSchema,
  AdminTokenCreateSchema,
  AdminTokenViewSchema,
  ApiKeyCreatedSchema,
  ApiKeyCreateSchema,
  ApiKeyViewSchema,
  AuthMeSchema,
  AuthProvidersSchema,
  BootstrapSignInSchema,
  DiscoveredToolSchema,
  IdentityProviderCreateSchema,
  IdentityProviderUpdateSchema,
  IdentityProviderViewSchema,
  MemberCreateSchema,
  MemberUpdateSchema,
  MemberViewSchema,
  OidcCallbackSchema,
  OidcStartedSchema,
  OidcStartSchema,
  PolicyDecisionViewSchema,
  PolicyDocumentSchema,
  PolicyPutEnvelopeSchema,
  PolicySavedSchema,
  PolicySimulateSchema,
  PolicyViewSchema,
  ProblemSchema,
  SignedInSchema,
  TenantCreateSchema,
  TenantUpdateSchema,
  TenantViewSchema,
  UpstreamCreateSchema,
  UpstreamTestResultSchema,
  UpstreamUpdateSchema,
  UpstreamViewSchema,
} from "@gatehouse/shared";
import type { INestApplication } from "@nestjs/common";
import { applyDecorators } from "@nestjs/common";
import {
  ApiBearerAuth,
  ApiBody,
  ApiParam,
  ApiQuery,
  ApiResponse,
  DocumentBuilder,
  type OpenAPIObject,
  SwaggerModule,
} from "@nestjs/swagger";
import { z } from "zod";

// The OpenAPI document is built from the zod schemas that validate requests, never from
// TypeScript metadata: decorators below reference components added by `buildOpenApiDocument`.
const REQUEST_SCHEMAS = {
  TenantCreate: TenantCreateSchema,
  TenantUpdate: TenantUpdateSchema,
  UpstreamCreate: UpstreamCreateSchema,
  UpstreamUpdate: UpstreamUpdateSchema,
  ApiKeyCreate: ApiKeyCreateSchema,
  IdentityProviderCreate: IdentityProviderCreateSchema,
  IdentityProviderUpdate: IdentityProviderUpdateSchema,
  PolicyDocument: PolicyDocumentSchema,
  PolicyPutEnvelope: PolicyPutEnvelopeSchema,
  PolicySimulate: PolicySimulateSchema,
  AdminTokenCreate: AdminTokenCreateSchema,
  MemberCreate: MemberCreateSchema,
  MemberUpdate: MemberUpdateSchema,
  BootstrapSignIn: BootstrapSignInSchema,
  OidcStart: OidcStartSchema,
  OidcCallback: OidcCallbackSchema,
} satisfies Record<string, z.ZodType>;

const RESPONSE_SCHEMAS = {
  Tenant: TenantViewSchema,
  Upstream: UpstreamViewSchema,
  DiscoveredTool: DiscoveredToolSchema,
  ApiKey: ApiKeyViewSchema,
  ApiKeyCreated: ApiKeyCreatedSchema,
  IdentityProvider: IdentityProviderViewSchema,
  Policy: PolicyViewSchema,
  PolicySaved: PolicySavedSchema,
  PolicyDecision: PolicyDecisionViewSchema,
  AdminToken: AdminTokenViewSchema,
  AdminTokenCreated: AdminTokenCreatedSchema,
  Member: MemberViewSchema,
  AuthMe: AuthMeSchema,
  AuthProviders: AuthProvidersSchema,
  SignedIn: SignedInSchema,
  OidcStarted: OidcStartedSchema,
  UpstreamTestResult: UpstreamTestResultSchema,
  Problem: ProblemSchema,
} satisfies Record<string, z.ZodType>;

export type SchemaName = keyof typeof REQUEST_SCHEMAS | keyof typeof RESPONSE_SCHEMAS;

const ref = (name: SchemaName) => ({ $ref: `#/components/schemas/${name}` });

/** Request body: a component generated from the zod schema the route validates with. */
export const JsonBody = (...names: SchemaName[]) =>
  ApiBody({ required: true, schema: names.length === 1 ? ref(names[0]!) : { oneOf: names.map(ref) } });

/** Success response with a component schema. */
export const JsonResponse = (status: number, name: SchemaName, description = "") =>
  ApiResponse({ status, description, schema: ref(name) });

/** `{items, nextCursor}` page of a component. */
export const PageResponse = (name: SchemaName) =>
  ApiResponse({
    status: 200,
    description: "One page, newest first",
    schema: {
      type: "object",
      required: ["items", "nextCursor"],
      properties: {
        items: { type: "array", items: ref(name) },
        nextCursor: { type: "string", nullable: true, description: "Pass as `cursor` for the next page" },
      },
    },
  });

/** The error answers a route can give, all with the `Problem` body. */
export const ProblemResponses = (...statuses: number[]) =>
  applyDecorators(
    ...statuses.map((status) =>
      ApiResponse({ status, description: PROBLEM_DESCRIPTIONS[status] ?? "", schema: ref("Problem") }),
    ),
  );

const PROBLEM_DESCRIPTIONS: Record<number, string> = {
  400: "VALIDATION_FAILED (details name each bad field) or PARSE_ERROR",
  401: "UNAUTHENTICATED",
  503: "SERVICE_UNAVAILABLE (a dependency such as the identity provider cannot be reached)",
  403: "FORBIDDEN",
  404: "NOT_FOUND (also for objects of another tenant)",
  409: "CONFLICT (a unique name or slug is taken)",
  422: "UNPROCESSABLE",
};

export const TenantParam = () =>
  ApiParam({ name: "tenant", description: "The tenant's slug or id", schema: { type: "string" } });

export const PathParam = (name: string, description: string) =>
  ApiParam({ name, description, schema: { type: "string" } });

export const PaginationQueryDocs = () =>
  applyDecorators(
    ApiQuery({
      name: "limit",
      required: false,
      schema: { type: "integer", minimum: 1, maximum: 200, default: 50 },
    }),
    ApiQuery({
      name: "cursor",
      required: false,
      description: "`nextCursor` of the previous page",
      schema: { type: "string", format: "uuid" },
    }),
  );

/** Every authenticated route: bearer token, 401 when it is missing or bad. */
export const Authenticated = () => applyDecorators(ApiBearerAuth("bearer"), ProblemResponses(401));

export function buildOpenApiDocument(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle("Gatehouse API")
    .setDescription(
      "Control plane of Gatehouse, a multi-tenant gateway for the Model Context Protocol. " +
        "Authenticate with `Authorization: Bearer <token>`: the platform admin token, or a tenant admin token (`mgt_…`) limited to its tenant. " +
        'Errors are `{"error": {"code", "message", "details"}}`. Lists are paginated with `?limit=&cursor=`, newest first.',
    )
    .setVersion("1")
    .addBearerAuth(
      { type: "http", scheme: "bearer", bearerFormat: "platform admin token, or tenant admin token mgt_…" },
      "bearer",
    )
    .build();
  const document = SwaggerModule.createDocument(app, config);
  const schemas: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(REQUEST_SCHEMAS)) schemas[name] = toOpenApi(schema, "input");
  for (const [name, schema] of Object.entries(RESPONSE_SCHEMAS)) schemas[name] = toOpenApi(schema, "output");
  document.components = {
    ...document.components,
    schemas: { ...document.components?.schemas, ...schemas } as never,
  };
  return document;
}

function toOpenApi(schema: z.ZodType, io: "input" | "output"): unknown {
  return z.toJSONSchema(schema, { target: "openapi-3.0", io, unrepresentable: "any" });
}
