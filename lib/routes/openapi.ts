/** The API as an OpenAPI document: the one route that loads every table. */
import { ok, route, type Reply } from "../http/route.js";
import { openApiDocument } from "../openapi.js";
import { aiRoutes } from "./ai.js";
import { signalingRoutes } from "./signaling.js";

let document: ReturnType<typeof openApiDocument> | undefined;

export const openApiRoutes = {
  "/api/openapi.json": route({
    GET: {
      summary: "This API as an OpenAPI 3.1 document",
      responses: { 200: "The document" },
      handle: async (): Promise<Reply> => ok((document ??= openApiDocument({ ...signalingRoutes, ...aiRoutes, ...openApiRoutes }))),
    },
  }),
};
