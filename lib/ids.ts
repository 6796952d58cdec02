/** Identifiers and secrets: short, typeable room and peer IDs; unguessable bearer tokens. */
import { createHash, timingSafeEqual } from "node:crypto";
import { customAlphabet, nanoid } from "nanoid";
import { ID_ALPHABET, ID_LENGTH } from "./id-format.js";

const TOKEN_PATTERN = new RegExp(`^([${ID_ALPHABET}]{${ID_LENGTH}})\\.[A-Za-z0-9_-]{32}$`);

export const newRoomId = customAlphabet(ID_ALPHABET, ID_LENGTH);
export const newPeerId = customAlphabet(ID_ALPHABET, ID_LENGTH);

/**
 * A room or peer ID derived from a request's idempotency key (Once.key) and what it is for, so a
 * repeat of the request names the same room or peer. As unguessable as the key it comes from.
 */
export function idFor(key: string, purpose: string): string {
  const digest = createHash("sha256").update(`${purpose}\n${key}`).digest();
  return Array.from(digest.subarray(0, ID_LENGTH), (byte) => ID_ALPHABET[byte % ID_ALPHABET.length]).join("");
}

/** A peer's token names the peer it belongs to; only its SHA-256 is stored. */
export function newToken(peerId: string): string {
  return `${peerId}.${nanoid(32)}`;
}

export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/** The peer a well-formed token claims to be, or null. The claim is proven only by its hash. */
export function tokenPeerId(token: string): string | null {
  return TOKEN_PATTERN.exec(token)?.[1] ?? null;
}

/** A key room's join key: 132 random bits; only its hash is stored. */
export const newJoinKey = () => nanoid(22);

const TICKET_PATTERN = new RegExp(`^st\\.([${ID_ALPHABET}]{${ID_LENGTH}})\\.[A-Za-z0-9_-]{32}$`);

/** A stream ticket names its peer too (like a token, but never one: the prefix tells them apart). */
export function newTicket(peerId: string): string {
  return `st.${peerId}.${nanoid(32)}`;
}

export function ticketPeerId(ticket: string): string | null {
  return TICKET_PATTERN.exec(ticket)?.[1] ?? null;
}

export function sameSecret(a: string, b: string): boolean {
  const x = createHash("sha256").update(a).digest();
  const y = createHash("sha256").update(b).digest();
  return timingSafeEqual(x, y);
}
