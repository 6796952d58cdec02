import type { Listener, Wake } from "./types.js";

/** Notifications for one waiting reader, queued until it asks for the next. */
export class WakeQueue implements Listener {
  private readonly queued: Wake[] = [];
  private waiter: ((wake: Wake) => void) | null = null;

  constructor(private readonly onClose: () => void = () => {}) {}

  push(wake: Wake) {
    if (this.waiter) {
      const resolve = this.waiter;
      this.waiter = null;
      resolve(wake);
    } else {
      this.queued.push(wake);
    }
  }

  next(timeoutMs: number, signal?: AbortSignal): Promise<Wake> {
    const queued = this.queued.shift();
    if (queued) return Promise.resolve(queued);
    if (timeoutMs <= 0 || signal?.aborted) return Promise.resolve({ kind: "timeout" });
    return new Promise((resolve) => {
      const finish = (wake: Wake) => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.waiter = null;
        resolve(wake);
      };
      const onAbort = () => finish({ kind: "timeout" });
      const timer = setTimeout(onAbort, timeoutMs);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiter = finish;
    });
  }

  close() {
    this.waiter?.({ kind: "timeout" });
    this.onClose();
  }
}

/**
 * Decodes a notification as both stores publish it: "gone", "closed:<body>", "w:<mark>", or
 * "m:<id>:<type>:<body>" — the new message itself, so a waiting poll can answer without
 * reading it back.
 */
export function parseWake(payload: string): Wake {
  if (payload === "gone") return { kind: "gone" };
  if (payload.startsWith("w:")) return { kind: "waiter", mark: payload.slice(2) };
  if (payload.startsWith("closed:")) return { kind: "closed", body: payload.slice("closed:".length) };
  const match = /^m:([0-9]+-[0-9]+):([a-z-]+):/.exec(payload);
  if (!match) return { kind: "message" };
  return { kind: "message", message: { id: match[1], type: match[2], body: payload.slice(match[0].length) } };
}

export const messagePayload = (id: string, type: string, body: string) => `m:${id}:${type}:${body}`;
