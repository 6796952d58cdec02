/**
 * Upstash QStash, for the AI call cap on Vercel (any plan): at a call's start a delayed message
 * is sent to this deployment's POST /api/session/expire, which QStash delivers at the deadline,
 * signed; that function hangs up whatever is due. (Vercel Cron runs at most daily on Hobby; a
 * function keeps no timer.) Loaded only by the AI routes, and only when QStash is configured.
 */
import { Client, Receiver } from "@upstash/qstash";
import type { Config } from "../config.js";
import { Problem } from "../problem.js";

type QStash = NonNullable<Config["qstash"]>;

/** Asks QStash to POST `body` to `url` in `delaySeconds`. */
export async function wakeLater(qstash: QStash, url: string, delaySeconds: number, body: unknown): Promise<void> {
  const client = new Client({ token: qstash.token, baseUrl: qstash.url });
  try {
    await client.publishJSON({ url, body, delay: delaySeconds, retries: 3 });
  } catch (error) {
    throw new Problem(503, "scheduler_unavailable", "The call's end could not be scheduled", `QStash did not take the call's deadline (${(error as Error).message.slice(0, 120)}); the call was hung up: try again shortly`, {}, { "retry-after": "5" });
  }
}

/** Whether `signature` (the Upstash-Signature header) is QStash's, for this body sent to this URL. */
export async function signedByQStash(qstash: QStash, signature: string, body: string, url: string): Promise<boolean> {
  const [currentSigningKey, nextSigningKey] = qstash.signingKeys;
  const receiver = new Receiver({ currentSigningKey, nextSigningKey, devMode: false });
  return receiver.verify({ signature, body, url, clockTolerance: 5 }).catch(() => false);
}
