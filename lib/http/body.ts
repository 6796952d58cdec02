import { problems } from "../problem.js";

const utf8 = new TextDecoder("utf-8", { fatal: true });

export const contentTypeOf = (request: Request) => (request.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();

/**
 * Reads a JSON body of at most `limit` bytes (or, where `sdp` is allowed, a raw
 * `application/sdp` body, read as `{ sdp }`), with its text as it came. An empty body reads as
 * {} (so `curl -X POST` works where every field is optional). Counts bytes as they arrive: a
 * body past the limit is refused without being held whole.
 */
export async function readBody(request: Request, limit: number, options: { sdp?: boolean } = {}): Promise<{ value: unknown; text: string }> {
  const declared = Number(request.headers.get("content-length") ?? 0);
  if (declared > limit) throw problems.tooLarge(`Request body is ${declared} bytes; the limit is ${limit}`);

  const raw = await readLimited(request.body, limit);
  if (raw.length === 0) return { value: {}, text: "" };
  const type = contentTypeOf(request);
  const sdp = options.sdp && type === "application/sdp";
  if (!sdp && type !== "application/json" && !type.endsWith("+json")) {
    const accepted = options.sdp ? "'application/json' or 'application/sdp'" : "'application/json'";
    throw problems.unsupportedMediaType(`Send ${accepted} (got '${type || "none"}')`);
  }
  let text: string;
  try {
    text = utf8.decode(raw);
  } catch {
    throw problems.invalidJson("Request body is not valid UTF-8");
  }
  if (sdp) return { value: { sdp: text }, text };
  try {
    return { value: JSON.parse(text), text };
  } catch (error) {
    throw problems.invalidJson(`Request body is not valid JSON: ${(error as Error).message}`);
  }
}

async function readLimited(body: ReadableStream<Uint8Array> | null, limit: number): Promise<Uint8Array> {
  if (!body) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    let chunk: ReadableStreamReadResult<Uint8Array>;
    try {
      chunk = await reader.read();
    } catch {
      // A client that hangs up mid-body is no fault of ours: a Problem, not an error to log.
      throw problems.clientClosed();
    }
    if (chunk.done) break;
    size += chunk.value.length;
    if (size > limit) {
      void reader.cancel().catch(() => {});
      throw problems.tooLarge(`Request body exceeds ${limit} bytes`);
    }
    chunks.push(chunk.value);
  }
  return Buffer.concat(chunks);
}
