/**
 * `npm start`: the API and the pages on PORT (default 3000) / HOST (default 127.0.0.1). The pages
 * are built at install (npm's prepare) or by `npm run build`, not on every start.
 */
import { existsSync } from "node:fs";
import { ConfigError } from "../lib/config.js";
import { startServer } from "../lib/server.js";
import { explainUnavailable } from "../lib/store/redis.js";

try {
  const server = await startServer();
  const { store: chosen } = server.context.config;
  const transport = { memory: "memory (single process; set REDIS_URL, or UPSTASH_REDIS_REST_URL/TOKEN, for Redis)", rest: "Redis over Upstash REST", tcp: "Redis over TCP" }[chosen.transport];
  const store = `${transport}${chosen.transport === "tcp" && chosen.cluster ? " (cluster)" : ""}: ${chosen.reason}`;
  console.log(
    [
      `signalbox listening on ${server.url}`,
      `  share a screen:  ${server.url}/host.html`,
      `  watch one:       ${server.url}/view.html?room=<ID>`,
      `  meeting:         ${server.url}/meet.html`,
      `  AI session:      ${server.url}/ai.html${server.context.config.openai.mode === "simulate" ? " (simulated: no OPENAI_API_KEY)" : ""}`,
      `  API:             ${server.url}/api/diagnostics, ${server.url}/api/openapi.json`,
      `  store: ${store}`,
    ].join("\n"),
  );
  if (!existsSync(new URL("../web/dist/index.html", import.meta.url))) {
    console.error("  warning: the pages are not built (web/dist): run `npm run build` (the API works without them)");
  }
  // Say at once, in words, if the store will not work: not as a 503 on every request later.
  await server.context.store.ping().catch((error) => console.error(`  warning: ${explainUnavailable(error, chosen.transport === "tcp" ? "REDIS_URL (or KV_URL)" : undefined)}; requests answer 503 until it does`));
  const stop = () => void server.close().then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(error.message);
    process.exit(1);
  }
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "EADDRINUSE" || code === "EACCES") {
    const port = process.env.PORT ?? "3000";
    const why = code === "EADDRINUSE" ? `port ${port} is in use` : `port ${port} needs privileges this process lacks`;
    console.error(`signalbox cannot listen: ${why}. Pick another, e.g. PORT=${Number(port) === 3000 ? 3001 : 3000} npm start`);
    process.exit(1);
  }
  throw error;
}
