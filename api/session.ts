import { aiRoutes } from "../lib/routes/ai.js";

export default aiRoutes["/api/session"];
