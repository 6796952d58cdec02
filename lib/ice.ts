/**
 * The ICE servers a peer is given: the configured STUN/TURN list, plus TURN credentials that
 * expire, by the TURN REST scheme coturn implements (`use-auth-secret`): the username is
 * `<expiry, unix seconds>:<peerId>` and the credential base64(HMAC-SHA1(secret, username)).
 * The secret itself never leaves the server.
 */
import { createHmac } from "node:crypto";
import type { Config, IceServer } from "./config.js";

export function iceServersFor(config: Config, peerId: string, now: number): IceServer[] {
  const turn = config.turn;
  if (!turn) return config.iceServers;
  if (turn.secret) {
    const username = `${Math.floor(now / 1000) + turn.ttlSeconds}:${peerId}`;
    const credential = createHmac("sha1", turn.secret).update(username).digest("base64");
    return [...config.iceServers, { urls: turn.urls, username, credential }];
  }
  return [...config.iceServers, { urls: turn.urls, username: turn.username!, credential: turn.credential! }];
}
