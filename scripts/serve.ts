/** `npm start`: the API and the pages on PORT (default 3000) / HOST (default 127.0.0.1). */
import { ConfigError } from "../lib/config.js";
import { startServer } from "../lib/server.js";

try {
  const server = await startServer({
    port: Number(process.env.PORT ?? 3000),
    host: process.env.HOST ?? "127.0.0.1",
  });
  const store = server.context.store.kind === "redis" ? "Redis (Upstash REST)" : "memory (single process; set UPSTASH_REDIS_REST_URL/TOKEN for Redis)";
  console.log(`signalbox listening on ${server.url}\n  store: ${store}`);
  const stop = () => void server.close().then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(error.message);
    process.exit(1);
  }
  throw error;
}
