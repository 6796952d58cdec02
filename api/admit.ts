import { routes } from "../lib/routes.js";

export default routes["/api/admit"];
