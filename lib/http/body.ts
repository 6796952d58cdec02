import type { IncomingMessage } from "node:http";
import { problems } from "../problem.js";

const utf8 = new TextDecoder("utf-8", { fatal: true });

export const contentTypeOf = (req: IncomingMessage) => String(req.headers["content-type"] ?? "").split(";")[0].trim().toLowerCase();

/**
 * Reads a JSON body of at most `limit` bytes (or, where `sdp` is allowed, a raw
 * `application/sdp` body, read as `{ sdp }`). An empty body reads as {} (so `curl -X POST`
 * works where every field is optional). Listens for data/end rather than iterating, because
 * that is how Vercel hands a function the body it has already buffered.
 */
export function readBody(req: IncomingMessage, limit: number, options: { sdp?: boolean } = {}): Promise<unknown> {
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > limit) return Promise.reject(problems.tooLarge(`Request body is ${declared} bytes; the limit is ${limit}`));

  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on("data", (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > limit) {
        failed = true;
        reject(problems.tooLarge(`Request body exceeds ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    // A client that hangs up mid-body is no fault of ours: a Problem, not an error to log.
    req.on("error", () => reject(problems.clientClosed()));
    req.on("end", () => {
      if (failed) return;
      const raw = Buffer.concat(chunks);
      if (raw.length === 0) return resolve({});
      const type = contentTypeOf(req);
      const sdp = options.sdp && type === "application/sdp";
      if (!sdp && type !== "application/json" && !type.endsWith("+json")) {
        const accepted = options.sdp ? "'application/json' or 'application/sdp'" : "'application/json'";
        return reject(problems.unsupportedMediaType(`Send ${accepted} (got '${type || "none"}')`));
      }
      let text: string;
      try {
        text = utf8.decode(raw);
      } catch {
        return reject(problems.invalidJson("Request body is not valid UTF-8"));
      }
      if (sdp) return resolve({ sdp: text });
      try {
        resolve(JSON.parse(text));
      } catch (error) {
        reject(problems.invalidJson(`Request body is not valid JSON: ${(error as Error).message}`));
      }
    });
  });
}
