import { openApiRoutes } from "../lib/routes/openapi.js";

export default openApiRoutes["/api/openapi.json"];
