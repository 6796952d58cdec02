/**
 * The typed boundary between the Redis store and its Lua (lib/store/lua.ts): for each script,
 * the arguments it takes (one JSON object, ARGV[1]) and the one reply shape it answers, with the
 * decoder that checks it. Nothing crosses into or out of Lua but through these.
 */
import { z } from "zod";
import type { SCRIPTS } from "./lua.js";

export type ScriptName = keyof typeof SCRIPTS;

/** A script: its name, whether it changes something (then it keeps its reply for repeats), its reply. */
export interface Script<Args, Reply> {
  name: ScriptName;
  changes: boolean;
  readonly reply: z.ZodType<Reply>;
  /** Only for the type: what the script takes. */
  readonly args?: Args;
}

/** Its reply's decoder is made when the script first runs: a function runs a few of them, and pays for those alone. */
const script =
  <Args>() =>
  <Reply>(name: ScriptName, changes: boolean, reply: () => z.ZodType<Reply>): Script<Args, Reply> => {
    let decoder: z.ZodType<Reply> | undefined;
    return { name, changes, get reply() { return (decoder ??= reply()); } };
  };

/** A list as Lua's cjson encodes it: an empty Lua table is both an array and an object, and comes as either. */
const list = <T extends z.ZodType>(item: T) =>
  z.preprocess((v) => (v !== null && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 0 ? [] : v), z.array(item));

const WindowReply = z.object({ limit: z.number(), remaining: z.number(), reset: z.number() });

/** What every reply may carry: the caller's charge, once this step took it, and whether it repeats an earlier reply. */
const meta = { charged: WindowReply.extend({ ok: z.boolean() }).optional(), replayed: z.boolean().optional() };
const ok = <F extends z.ZodRawShape>(fields: F) => z.object({ status: z.literal("ok"), ...meta, ...fields });
const refused = <S extends string>(...statuses: [S, ...S[]]) => z.object({ status: z.enum(statuses), ...meta });

/** Why a verified-caller script may refuse (its own refusals come on top). */
const DENIED = ["room-missing", "unauthorized", "not-admitted", "rate-limited"] as const;

/** A request's idempotency key came with another request (the store throws IdempotencyMismatch). */
export const Mismatch = z.object({ status: z.literal("idempotency-mismatch") });
/** A script's replies: each of `shapes`, or a mismatch. */
const replies = <T extends [z.ZodType, ...z.ZodType[]]>(...shapes: T) => z.union([...shapes, Mismatch]);

const Messages = list(z.object({ id: z.string(), body: z.string() }));
/** The room as a join or a peer list sees it: its info JSON, expiry, lock, and peers' JSON. */
const View = { info: z.string(), exp: z.number(), locked: z.boolean(), peers: list(z.string()) };

interface Verified {
  caller: string;
  tokenHash: string;
}
interface Sent {
  type: string;
  body: string;
}

export const CREATE_ROOM = script<{
  roomJson: string;
  hostJson: string;
  hostId: string;
  maxPeers: number;
  topology: string;
  lobby?: boolean;
  ttlMs: number;
  capAt: number;
  hostTokenHash: string;
  inboxMax: number;
  mailMaxBytes: number;
  joinKeyHash?: string;
}>()("CREATE_ROOM", true, () => replies(ok({ info: z.string(), exp: z.number() }), refused("exists")));

export const DESCRIBE_ROOM = script<Record<string, never>>()("DESCRIBE_ROOM", false, () => replies(ok(View), refused("room-missing")));

export const LIST_PEERS = script<Verified>()("LIST_PEERS", false, () => replies(ok(View), refused(...DENIED)));

export const JOIN_ROOM = script<{
  peer: string;
  peerJson: string;
  tokenHash: string;
  announce: Sent;
  joinKeyHash?: string;
  byHost?: boolean;
  knock?: string;
  waitUntil?: number;
}>()(
  "JOIN_ROOM",
  true,
  () => replies(
    ok({ waiting: z.literal(true), until: z.number() }),
    ok(View),
    refused("room-missing", "room-full", "room-locked", "join-key-required", "join-key-invalid", "lobby-full", "room-busy"),
  ),
);

export const LEAVE_ROOM = script<Verified & { target: string; announce: Sent; closed: string }>()(
  "LEAVE_ROOM",
  true,
  () => replies(ok({ sessions: list(z.string()).optional() }), refused(...DENIED, "forbidden", "peer-missing")),
);

export const CLOSE_ROOM = script<Verified & { closed: string }>()("CLOSE_ROOM", true, () => replies(ok({ sessions: list(z.string()) }), refused(...DENIED, "forbidden")));

export const SEND = script<Verified & Sent & { to: string }>()(
  "SEND",
  true,
  () => replies(ok({ id: z.string() }), refused(...DENIED, "forbidden", "peer-missing", "inbox-full", "room-busy")),
);

export const READ = script<Verified & { after?: string; from?: string; batch: number; mark?: string }>()(
  "READ",
  false,
  () => replies(ok({ messages: Messages }), z.object({ status: z.literal("closed"), body: z.string(), ...meta }), refused(...DENIED)),
);

export const TAKE = script<Verified & { type: string; batch: number; mark?: string }>()("TAKE", true, () => replies(ok({ messages: Messages }), refused(...DENIED)));

export const PUT_SESSION = script<Verified & { sessionId: string; record: string; max: number; expiresAt?: number }>()(
  "PUT_SESSION",
  true,
  () => replies(ok({}), refused(...DENIED, "forbidden", "limit")),
);

export const REMOVE_SESSION = script<Verified & { sessionId: string }>()(
  "REMOVE_SESSION",
  true,
  () => replies(ok({ record: z.string().optional() }), refused(...DENIED, "forbidden")),
);

export const END_SESSION = script<{ sessionId: string }>()("END_SESSION", true, () => ok({ record: z.string().optional() }));

export const ADMIT = script<Verified & { target: string; allow: boolean; admitted: string; denied: string; announce: Sent; deniedUntil: number }>()(
  "ADMIT",
  true,
  () => replies(ok({}), refused(...DENIED, "forbidden", "peer-missing", "room-full")),
);

export const CHARGE_CALL = script<Verified>()("CHARGE_CALL", false, () => replies(ok({}), refused(...DENIED)));

export const SET_LOCKED = script<Verified & { locked: boolean }>()("SET_LOCKED", true, () => replies(ok({}), refused(...DENIED, "forbidden")));

export const ROTATE_JOIN_KEY = script<Verified & { joinKeyHash: string }>()("ROTATE_JOIN_KEY", true, () => replies(ok({}), refused(...DENIED, "forbidden", "open-room")));

/** Issuing again replaces the ticket: a repeat needs no reply of its own. */
export const ISSUE_TICKET = script<Verified & { ticketHash: string; expiresAt: number }>()("ISSUE_TICKET", false, () => replies(ok({}), refused(...DENIED)));

export const REDEEM_TICKET = script<{ peerId: string; ticketHash: string }>()("REDEEM_TICKET", true, () => replies(ok({ tokenHash: z.string() }), refused("invalid")));

export const CHAT = script<Verified & { body: string; at: number; historyMax: number; limits?: { perSender: number; perRoom: number; windowMs: number } }>()(
  "CHAT",
  true,
  () => replies(
    ok({ at: z.number(), name: z.string().optional(), window: WindowReply.optional() }),
    z.object({ status: z.literal("chat-limited"), window: WindowReply, ...meta }),
    refused(...DENIED, "room-busy"),
  ),
);

export const CHAT_HISTORY = script<Verified>()("CHAT_HISTORY", false, () => replies(ok({ bodies: list(z.string()) }), refused(...DENIED)));

export const SCHEDULE_END = script<{ member: string; at: number; keepUntil: number }>()("SCHEDULE_END", false, () => ok({}));

export const DUE_SESSIONS = script<{ max: number }>()("DUE_SESSIONS", false, () => ok({ members: list(z.string()) }));

export const UNSCHEDULE_END = script<{ member: string }>()("UNSCHEDULE_END", false, () => ok({}));
