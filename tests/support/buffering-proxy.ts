/**
 * A reverse proxy that buffers each response whole before passing it on, as a misconfigured
 * proxy does to server-sent events: a stream reaches the client only when it ends.
 */
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export async function startBufferingProxy(target: string): Promise<{ url: string; close(): Promise<void> }> {
  const upstream = new URL(target);
  const server: Server = createServer((req, res) => {
    const forward = request({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers }, (answer) => {
      const chunks: Buffer[] = [];
      answer.on("data", (chunk: Buffer) => chunks.push(chunk));
      answer.on("end", () => {
        const headers = { ...answer.headers };
        delete headers["transfer-encoding"];
        res.writeHead(answer.statusCode ?? 502, headers).end(Buffer.concat(chunks));
      });
      answer.on("error", () => res.destroy());
    });
    forward.on("error", () => res.destroy());
    res.on("close", () => forward.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((ready) => server.listen(0, "127.0.0.1", ready));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((done) => (server.closeAllConnections(), server.close(() => done()))),
  };
}
