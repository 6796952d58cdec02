/**
 * The self-hosted server: every function in api/, unchanged, plus the static pages in web/,
 * on one port. `npm start` runs it; so can a VM, a container or Fly.io.
 */
import { createReadStream } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { FastResponse, toNodeHandler } from "srvx/node";
import { bindContext, createContext, type Context } from "./context.js";
import { clientAddress } from "./http/client-address.js";
import { PAGE_HEADERS } from "./http/security-headers.js";
import { notFound, type Route } from "./http/route.js";
import { AddressSlots } from "./ratelimit.js";

export interface ServerOptions {
  /** Settings as environment variables (defaults to process.env). */
  env?: Record<string, string | undefined>;
  /** A ready context instead of one built from `env`. */
  context?: Context;
  /** Instead of PORT and HOST. */
  port?: number;
  host?: string;
}

export interface RunningServer {
  url: string;
  context: Context;
  close(): Promise<void>;
}

const root = resolve(fileURLToPath(new URL(".", import.meta.url)), "..");
const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".txt": "text/plain; charset=utf-8",
};

/** Loads every api/**\/*.ts (or .js) as Vercel would: the file's path is the route. */
async function loadFunctions(): Promise<Map<string, Route>> {
  const dir = join(root, "api");
  const functions = new Map<string, Route>();
  for (const file of await readdir(dir, { recursive: true })) {
    const ext = extname(file);
    if ((ext !== ".ts" && ext !== ".js") || file.endsWith(".d.ts")) continue;
    const module = (await import(pathToFileURL(join(dir, file)).href)) as { default: Route };
    // An index file is its folder's route (api/events/index.ts serves /api/events).
    functions.set(file.slice(0, -ext.length).split(sep).join("/").replace(/(^|\/)index$/, ""), module.default);
  }
  return functions;
}

async function serveStatic(webRoot: string, pathname: string, res: ServerResponse): Promise<boolean> {
  const relative = normalize(decodeURIComponent(pathname)).replace(/^([/\\])+/, "");
  let file = resolve(webRoot, relative);
  if (file !== webRoot && !file.startsWith(webRoot + sep)) return false;
  let info = await stat(file).catch(() => null);
  if (info?.isDirectory()) {
    file = join(file, "index.html");
    info = await stat(file).catch(() => null);
  }
  if (!info?.isFile()) return false;
  res.writeHead(200, { ...PAGE_HEADERS, "content-type": CONTENT_TYPES[extname(file)] ?? "application/octet-stream", "content-length": info.size });
  createReadStream(file).pipe(res);
  return true;
}

/**
 * With no proxy in front, one address may hold at most `connectionsPerAddress` sockets; more
 * are closed at once. Behind a proxy every socket comes from the proxy, which must do this.
 */
function limitConnectionsPerAddress(server: Server, context: Context) {
  if (context.config.trustProxy) return;
  const open = new AddressSlots(context.config.connectionsPerAddress);
  server.on("connection", (socket: Socket) => {
    const release = open.enter(clientAddress(socket.remoteAddress, undefined, 0));
    if (release) socket.once("close", release);
    else socket.destroy();
  });
}

export async function startServer(options: ServerOptions = {}): Promise<RunningServer> {
  const context = options.context ?? (await createContext(options.env ?? process.env, FastResponse));
  // Each function as Vercel would call it (`fetch`), on this server's context.
  const served = (fetch: (request: Request) => Promise<Response>) =>
    toNodeHandler((request) => (bindContext(request, context), fetch(request))) as (req: IncomingMessage, res: ServerResponse) => unknown;
  const handlers = new Map([...(await loadFunctions())].map(([name, fn]) => [name, served(fn.fetch)]));
  const missing = served(notFound);
  const webRoot = join(root, "web", "dist");

  const { requestTimeoutMs } = context.config;
  // A request's headers and body must arrive within requestTimeoutMs (408 after), checked every
  // second: trickling bodies cannot hold sockets. Long-polls are unaffected: their requests are
  // complete at once, and only the answer waits.
  const server = createServer({ requestTimeout: requestTimeoutMs, headersTimeout: requestTimeoutMs, connectionsCheckingInterval: 1000 }, async (req, res) => {
    let pathname: string;
    try {
      pathname = new URL(req.url ?? "/", "http://localhost").pathname;
    } catch {
      return missing(req, res);
    }
    const name = /^\/api\/([a-z.-]+(?:\/[a-z.-]+)*)\/?$/.exec(pathname)?.[1];
    const handler = name ? handlers.get(name) : undefined;
    if (handler) return handler(req, res);
    if (!pathname.startsWith("/api/") && (req.method === "GET" || req.method === "HEAD")) {
      try {
        if (await serveStatic(webRoot, pathname, res)) return;
      } catch {
        // a malformed path: fall through to 404
      }
    }
    return missing(req, res);
  });
  // Long-polls hold a request for up to 25 s; keep idle sockets a little longer than that.
  server.keepAliveTimeout = 30_000;
  limitConnectionsPerAddress(server, context);

  await new Promise<void>((ready, fail) => {
    server.once("error", fail);
    server.listen(options.port ?? context.config.listen.port, options.host ?? context.config.listen.host, ready);
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;

  return {
    url: `http://${host}:${address.port}`,
    context,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((done) => server.close(() => done()));
      await context.store.close();
    },
  };
}
