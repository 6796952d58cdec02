/**
 * Every Redis key and channel name the store uses, in one place. A room's keys share the
 * `{roomId}` hash tag, so on a cluster they live in one slot, and each room script declares
 * the same fixed set (Upstash's key locking: a flagged script may touch only its KEYS).
 */
import { createHash } from "node:crypto";

const room = (roomId: string) => `sb:{${roomId}}`;

/**
 * The keys of one room, in the order every room script takes them (KEYS[1..6], lib/store/lua.ts):
 *   room    hash: the room's settings, its peers, their tokens' hashes, counters
 *   mail    hash: each message's body, stored once however many peers it goes to
 *   box     sorted set: who has which message unread (a recipient's mail is one lexical range)
 *   lobby   sorted set: peers waiting for the host, by when their wait ends
 *   chat    list: the room's last chat messages
 *   closed  hash, for a while after the room closed: the room-closed message and who may read it
 */
export const roomKeys = (roomId: string) => {
  const r = room(roomId);
  return [r, `${r}:mail`, `${r}:box`, `${r}:lobby`, `${r}:chat`, `${r}:closed`];
};

/**
 * Where a request's reply is kept, so that the same request run again (a retry after a lost
 * reply) answers it instead of acting twice: KEYS[7] of a script that changes something. `once`
 * names the request (lib/store/types.ts: Once); the script's name keeps a request's steps apart.
 */
export const replyKey = (roomId: string, once: string, script: string) =>
  `${room(roomId)}:op:${createHash("sha256").update(`${once}\n${script}`).digest("base64url").slice(0, 22)}`;

/** Between a room's key and a peer's id, the name of the pub/sub channel that wakes its waiting reads. */
export const CHANNEL_INFIX = ":ch:";

/** The pub/sub channel that wakes a peer's waiting reads (sharded on a cluster: same slot as the room). */
export const channelName = (roomId: string, peerId: string) => `${room(roomId)}${CHANNEL_INFIX}${peerId}`;

/** The one key outside any room: AI calls by deadline, as "<roomId>/<sessionId>". */
export const SESSION_ENDS_KEY = "sb:ai:ends";
