/**
 * Proxies that lose one reply on purpose, after the store has acted on its request: between the
 * server and the Upstash REST bridge (the reply dropped once the bridge has answered), and
 * between the server and redis-server over TCP (the connection cut once the command is written
 * and Redis has answered it). Each is armed for one script by name; everything else passes.
 */
import { createHash } from "node:crypto";
import { createServer as createHttpServer, request as httpRequest } from "node:http";
import { createServer as createTcpServer, connect, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { SCRIPTS } from "../../lib/store/lua.js";
import type { ScriptName } from "../../lib/store/scripts.js";
import { stripUpstashFlags } from "../../lib/store/tcp.js";

const sha1 = (text: string) => createHash("sha1").update(text).digest("hex");

export interface LossyProxy {
  url: string;
  /** The next request running `script` reaches the store, and its reply is lost. */
  loseReplyTo(script: ScriptName): void;
  /** How many replies it has lost since start. */
  lost(): number;
  close(): Promise<void>;
}

/** In front of the REST bridge at `target`: a matched request is answered by the bridge, then its connection is destroyed. */
export async function restReplyDropper(target: string): Promise<LossyProxy> {
  let armed: ScriptName | null = null;
  let lost = 0;
  const base = new URL(target);
  const server = createHttpServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    // @upstash/redis runs a script as ["evalsha", sha, ...] (or ["eval", source, ...] once NOSCRIPT).
    const matched = armed !== null && runs(body.toString(), armed);
    const upstream = httpRequest({ host: base.hostname, port: base.port, path: req.url, method: req.method, headers: req.headers }, (answer) => {
      // Only a reply of a script that ran is lost (a NOSCRIPT one passes: the client sends the script next).
      if (matched && answer.statusCode === 200) {
        armed = null;
        answer.resume();
        answer.on("end", () => (lost++, req.socket.destroy()));
        return;
      }
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on("error", () => res.destroy());
    res.on("close", () => upstream.destroy());
    upstream.end(body);
  });
  const runs = (body: string, script: ScriptName) => {
    try {
      const [name, first] = JSON.parse(body) as string[];
      return (name.toLowerCase() === "evalsha" && first === sha1(SCRIPTS[script])) || (name.toLowerCase() === "eval" && first === SCRIPTS[script]);
    } catch {
      return false;
    }
  };
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    loseReplyTo: (script) => (armed = script),
    lost: () => lost,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** In front of redis-server at `target` (host:port): once a matched command is written and Redis answers it, the client's connection is cut. */
export async function tcpReplyCutter(target: { host: string; port: number }): Promise<LossyProxy> {
  let armed: ScriptName | null = null;
  let lost = 0;
  const sockets = new Set<Socket>();
  const server = createTcpServer((client) => {
    const redis = connect(target.port, target.host);
    sockets.add(client).add(redis);
    let cutting = false;
    let seen = "";
    client.on("data", (chunk) => {
      if (armed !== null) {
        // The script goes by its SHA1 (EVALSHA), or as its text once Redis answered NOSCRIPT.
        seen = (seen + chunk.toString("latin1")).slice(-200_000);
        const source = stripUpstashFlags(SCRIPTS[armed]);
        if (seen.includes(sha1(source)) || seen.includes(source)) (cutting = true), (seen = "");
      }
      redis.write(chunk);
    });
    redis.on("data", (chunk) => {
      // Only the reply of a script that ran is cut (a NOSCRIPT one passes: the client sends the script next).
      if (!cutting || chunk.toString("latin1").startsWith("-NOSCRIPT")) return void ((cutting = false), client.write(chunk));
      armed = null;
      lost++;
      client.destroy();
      redis.destroy();
    });
    const end = () => (client.destroy(), redis.destroy(), sockets.delete(client), sockets.delete(redis));
    client.on("close", end).on("error", end);
    redis.on("close", end).on("error", end);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `redis://127.0.0.1:${(server.address() as AddressInfo).port}`,
    loseReplyTo: (script) => (armed = script),
    lost: () => lost,
    async close() {
      sockets.forEach((s) => s.destroy());
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
