import { handlers } from "../lib/routes.js";

export default handlers.chat;
