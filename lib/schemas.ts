/**
 * The shape of every request, in one place: each zod schema is the request's type,
 * its validation and its error message.
 */
import { z } from "zod";
import { ID_ALPHABET, ID_LENGTH, ID_PATTERN } from "./id-format.js";

export const LIMITS = {
  sdpBytes: 64 * 1024,
  candidatesPerRequest: 64,
  requestBytes: 256 * 1024,
  nameLength: 64,
  maxWaitSeconds: 25,
  maxPeers: { star: 100, mesh: 8 },
  maxPeersCeiling: { star: 500, mesh: 16 },
} as const;

/** IDs are typed by people: accept any case and surrounding spaces. */
const id = (what: string) =>
  z
    .string({ error: `${what} is required` })
    .trim()
    .toLowerCase()
    .regex(ID_PATTERN, `${what} must be ${ID_LENGTH} characters from '${ID_ALPHABET}'`);

export const roomId = id("roomId");
export const peerId = id("peerId");

/** A message id, e.g. "1700000000000-0"; passed back as `after` to acknowledge. */
export const cursor = z.string().regex(/^\d{1,15}-\d{1,15}$/, "after must be a message id such as '1700000000000-0'");

const waitSeconds = z.coerce
  .number({ error: "wait must be a number of seconds" })
  .min(0)
  .max(LIMITS.maxWaitSeconds, `wait must be at most ${LIMITS.maxWaitSeconds} seconds`)
  .default(0);

export const CreateRoomBody = z.strictObject({
  topology: z.enum(["star", "mesh"]).default("star"),
  access: z.enum(["open", "key", "lobby"], { error: "access must be 'open', 'key' or 'lobby'" }).default("open"),
  /** With access "key": a key to knock, the host to enter. */
  lobby: z.boolean({ error: "lobby must be true or false" }).optional(),
  maxPeers: z.number().int().min(2).max(LIMITS.maxPeersCeiling.star).optional(),
  ttlSeconds: z.number().int().min(60).max(86_400).optional(),
  name: z.string().trim().min(1).max(LIMITS.nameLength).optional(),
});

/** A room's join key as the create response gives it (nanoid, 22 characters: 132 bits). */
const joinKey = z.string().regex(/^[A-Za-z0-9_-]{22}$/, "joinKey is not a join key");

export const JoinBody = z.strictObject({
  roomId,
  joinKey: joinKey.optional(),
  name: z.string().trim().min(1).max(LIMITS.nameLength).optional(),
});

export const RoomQuery = z.object({ roomId });
export const OptionalRoomQuery = z.object({ roomId: roomId.optional() });
export const PeerQuery = z.object({ roomId, peerId });

const sdp = z.string().min(1).max(LIMITS.sdpBytes, `SDP must be at most ${LIMITS.sdpBytes} bytes`);

export const DescriptionBody = (type: "offer" | "answer") =>
  z.strictObject({
    roomId,
    to: peerId,
    description: z.strictObject({
      type: z.literal(type, { error: `description.type must be '${type}' on this route` }),
      sdp,
    }),
  });

/** RTCIceCandidateInit as browsers serialize it; null (or an empty candidate) ends gathering. */
const candidate = z
  .object({
    candidate: z.string().max(1024),
    sdpMid: z.string().max(64).nullish(),
    sdpMLineIndex: z.number().int().min(0).max(65535).nullish(),
    usernameFragment: z.string().max(256).nullish(),
  })
  .nullable();

export const CandidateBody = z.strictObject({
  roomId,
  to: peerId,
  candidates: z
    .array(candidate)
    .min(1, "candidates must hold at least one candidate")
    .max(LIMITS.candidatesPerRequest, `at most ${LIMITS.candidatesPerRequest} candidates per request`),
});

const presetName = z.string().regex(/^[a-z0-9-]{1,32}$/, "preset must be a preset name").optional();
export const SessionBody = z.strictObject({ roomId, sdp, preset: presetName });
export const AgentBody = z.strictObject({ roomId, preset: presetName });
/** What QStash delivers at a call's deadline (its signature is what counts: the sweep ends whatever is due). */
export const ExpireBody = z.strictObject({ roomId: roomId.optional(), sessionId: z.string().max(64).optional() });
export const SessionQuery = z.object({ roomId, id: z.string().regex(/^ses_[A-Za-z0-9_-]{20}$/, "id must be a session id") });

export const ChatBody = z.strictObject({
  roomId,
  text: z.string().trim().min(1, "text must not be empty").max(2000, "text must be at most 2000 characters"),
});

export const PollQuery = z.object({ roomId, after: cursor.optional(), wait: waitSeconds });
export const TakeQuery = z.object({ roomId, wait: waitSeconds });
export const EventsQuery = z.object({
  roomId,
  after: cursor.optional(),
  ticket: z.string().min(1).max(128, "ticket is not a stream ticket").optional(),
});
export const TicketBody = z.strictObject({ roomId });
export const LockBody = z.strictObject({ roomId, locked: z.boolean({ error: "locked must be true or false" }) });
export const RoomBody = z.strictObject({ roomId });
export const AdmitBody = z.strictObject({ roomId, peerId, allow: z.boolean({ error: "allow must be true or false" }) });

export type CreateRoomInput = z.infer<typeof CreateRoomBody>;
export type JoinInput = z.infer<typeof JoinBody>;
export type CandidateInput = z.infer<typeof CandidateBody>;
export type Description = { type: "offer" | "answer"; sdp: string };
/** Fields whose excess is a 413 (too large) rather than a 400. */
export const SIZE_LIMITED_FIELDS = new Set(["sdp", "candidates"]);
