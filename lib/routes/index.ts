/** Every route of the API, by the path it is served at (each api/ file loads only its own table). */
import { aiRoutes } from "./ai.js";
import { openApiRoutes } from "./openapi.js";
import { signalingRoutes } from "./signaling.js";

export const routes = { ...signalingRoutes, ...aiRoutes, ...openApiRoutes };
