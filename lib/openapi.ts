/**
 * The API as an OpenAPI 3.1 document, generated from the routes table: paths and methods from
 * the routes, parameters and bodies from their zod schemas (JSON Schema 2020-12, which OpenAPI
 * 3.1 uses as is), and the problem responses each method can give from its auth and limits.
 */
import { z } from "zod";
import type { MethodSpec, Route } from "./http/route.js";
import { VERSION } from "./version.js";

type JsonSchema = Record<string, unknown>;

function jsonSchema(schema: z.ZodType): JsonSchema {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as JsonSchema;
  return rest;
}

function parameters(query: z.ZodType) {
  const schema = jsonSchema(query) as { properties?: Record<string, JsonSchema>; required?: string[] };
  return Object.entries(schema.properties ?? {}).map(([name, property]) => ({
    name,
    in: "query",
    required: schema.required?.includes(name) ?? false,
    schema: property,
  }));
}

const problem = (description: string) => ({
  description,
  content: { "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } } },
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function operation(path: string, method: string, spec: MethodSpec<any, any>, openRoom: boolean) {
  const responses: Record<string, unknown> = {};
  for (const [status, description] of Object.entries(spec.responses)) {
    const content = spec.eventStream ? { "text/event-stream": { schema: { type: "string" } } } : { "application/json": { schema: { type: "object" } } };
    responses[status] = status === "204" ? { description } : { description, content };
  }
  if (spec.query || spec.body) responses["400"] = problem("The request is invalid (`invalid_request`, `invalid_json`); `errors` names each field");
  if (spec.auth) responses["401"] = problem("No token, or not a token of this room (`missing_token`, `invalid_token`)");
  if (openRoom) responses["403"] = problem("This deployment requires its AUTH_SECRET or a JWT from its identity provider (`forbidden`)");
  if (spec.auth) responses["404"] = problem("No such recipient or session (`peer_not_found`, `session_not_found`)");
  else if (path === "/api/peers") responses["404"] = problem("No such room, or it has expired or was closed (`room_not_found`)");
  const lobby = "a peer still waiting in the lobby, which may only read its own mail (`not_admitted`)";
  if (spec.auth) responses["403"] = problem(`Not allowed to this peer: ${lobby}`);
  for (const [status, description] of Object.entries(spec.problems ?? {})) {
    responses[status] = problem(status === "403" && spec.auth ? `${description}; ${lobby}` : description);
  }
  if (spec.body) {
    responses["413"] = problem("The body or a field is too large (`payload_too_large`)");
    responses["415"] = problem("The body is not JSON (`unsupported_media_type`)");
  }
  responses["429"] = problem("Rate limited (`rate_limited`), too many waiting reads (`too_many_waiting`), or the recipient's or room's mail is full (`inbox_full`, `room_busy`); see Retry-After");
  responses["503"] = problem(
    openRoom
      ? "The store, or the identity provider's keys, cannot be reached (`store_unavailable`, `auth_unavailable`), or the store is shedding load (`store_busy`); see Retry-After"
      : "The store cannot be reached (`store_unavailable`), or is shedding load (`store_busy`); see Retry-After",
  );

  const body = spec.body ? jsonSchema(spec.body) : null;
  return {
    operationId: `${method.toLowerCase()}${path.replace(/^\/api/, "").replace(/[/.-](\w)/g, (_, c: string) => c.toUpperCase())}`,
    summary: spec.summary,
    ...(spec.query
      ? { parameters: [...parameters(spec.query), ...(spec.eventStream ? [{ name: "Last-Event-ID", in: "header", required: false, description: "The last event id received: acknowledges up to it and resumes after it (wins over `after`)", schema: { type: "string" } }] : [])] }
      : {}),
    ...(body
      ? {
          requestBody: {
            required: true,
            content: {
              "application/json": { schema: body },
              ...(spec.acceptsSdp ? { "application/sdp": { schema: { type: "string" } } } : {}),
            },
          },
        }
      : {}),
    responses,
    // Peer routes take the room token; room creation takes AUTH_SECRET where the deployment sets one.
    // (A stream ticket in the query stands in for the bearer token where the route takes one.)
    ...(spec.auth ? { security: spec.acceptsTicket ? [{ bearer: [] }, {}] : [{ bearer: [] }] } : openRoom ? { security: [{}, { bearer: [] }] } : {}),
  };
}

export function openApiDocument(routes: Record<string, Route>) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const [path, handler] of Object.entries(routes)) {
    paths[path] = {};
    for (const [method, spec] of Object.entries(handler.spec)) {
      paths[path][method.toLowerCase()] = operation(path, method, spec!, path === "/api/rooms" && method === "POST");
    }
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "signalbox",
      version: VERSION,
      description: "WebRTC signaling over plain HTTP: rooms, SDP offers/answers, trickled ICE candidates, mail pushed as server-sent events or long-polled, chat, and an OpenAI Realtime bridge.",
    },
    paths,
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "A peer's room token (or, to create rooms, the deployment's AUTH_SECRET or a JWT its AUTH_JWKS_URL verifies)" } },
      schemas: {
        Problem: {
          type: "object",
          description: "RFC 9457 problem details",
          required: ["type", "title", "status", "detail", "code"],
          properties: {
            type: { type: "string", examples: ["urn:signalbox:problem:room_not_found"] },
            title: { type: "string" },
            status: { type: "integer" },
            detail: { type: "string" },
            code: { type: "string" },
            errors: { type: "array", items: { type: "object", properties: { field: { type: "string" }, message: { type: "string" } } } },
          },
        },
      },
    },
  };
}
