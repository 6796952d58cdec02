import { signalingRoutes } from "../../lib/routes/signaling.js";

export default signalingRoutes["/api/rooms/key"];
