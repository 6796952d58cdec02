/**
 * The address a request is limited by: the one the nearest untrusted hop connected from.
 *
 * Each proxy appends the address it was connected from to X-Forwarded-For, so only the
 * rightmost `trustedHops` entries were written by proxies we trust; anything to their left
 * was written by the client and proves nothing. With `trustedHops` proxies in front, the
 * client is the entry that many places from the right (as Express's `trust proxy = N`).
 *
 * IPv6 clients are limited per /64: one subscriber commonly holds a whole /64 (or more), so
 * a per-address limit would give them 2^64 budgets.
 */
import ipaddr from "ipaddr.js";

export function clientAddress(socketAddress: string | undefined, forwardedFor: string | undefined, trustedHops: number): string {
  // Nearest first: the socket's peer, then each forwarded entry from the right.
  const hops = [socketAddress ?? "", ...(forwardedFor ?? "").split(",").map((s) => s.trim()).filter(Boolean).reverse()];
  const chosen = hops[Math.min(trustedHops, hops.length - 1)];
  return limitKey(chosen) ?? limitKey(socketAddress ?? "") ?? "unknown";
}

/** An IPv4 address as it is, an IPv6 one as its /64 (IPv4-mapped IPv6 as the IPv4 address). */
function limitKey(address: string): string | null {
  const bare = address.replace(/^\[|\]$/g, ""); // ipaddr.js takes zone ids (fe80::1%eth0) itself
  if (!ipaddr.isValid(bare)) return null;
  const parsed = ipaddr.process(bare);
  if (parsed.kind() === "ipv4") return parsed.toString();
  const parts = (parsed as ipaddr.IPv6).parts.slice(0, 4).map((p) => p.toString(16));
  return `${parts.join(":")}::/64`;
}
