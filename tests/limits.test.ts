/**
 * The pieces limits are built from, on their own with an injected clock: which address a
 * request is counted by, the sliding window, waiting-read slots and the verified-token memory.
 */
import { describe, expect, it } from "vitest";
import { clientAddress } from "../lib/http/client-address.js";
import { AddressSlots, MemoryLimiter, VerifiedPeers } from "../lib/ratelimit.js";

describe("client address", () => {
  it("is the socket's with no proxy trusted, whatever X-Forwarded-For says", () => {
    expect(clientAddress("203.0.113.9", undefined, 0)).toBe("203.0.113.9");
    expect(clientAddress("203.0.113.9", "198.51.100.1", 0)).toBe("203.0.113.9");
    expect(clientAddress(undefined, undefined, 0)).toBe("unknown");
  });

  it("is the entry as many places from the right as there are trusted proxies", () => {
    const forwarded = "192.0.2.1, 192.0.2.2 ,192.0.2.3";
    expect(clientAddress("10.0.0.1", forwarded, 1)).toBe("192.0.2.3");
    expect(clientAddress("10.0.0.1", forwarded, 2)).toBe("192.0.2.2");
    expect(clientAddress("10.0.0.1", forwarded, 3)).toBe("192.0.2.1");
    // More proxies trusted than entries: the leftmost is as far as anyone vouches.
    expect(clientAddress("10.0.0.1", forwarded, 9)).toBe("192.0.2.1");
    expect(clientAddress("10.0.0.1", "", 1)).toBe("10.0.0.1");
    // Empty entries are no hops.
    expect(clientAddress("10.0.0.1", "192.0.2.1,, 192.0.2.3,", 2)).toBe("192.0.2.1");
  });

  it("falls back to the socket's address when the chosen entry is not an address", () => {
    expect(clientAddress("10.0.0.1", "192.0.2.1, not-an-ip", 1)).toBe("10.0.0.1");
    expect(clientAddress("10.0.0.1", "192.0.2.1, unknown", 1)).toBe("10.0.0.1");
  });

  it("counts IPv6 per /64, in any spelling, and IPv4-mapped addresses as IPv4", () => {
    const key = "2001:db8:1:2::/64";
    for (const spelling of ["2001:db8:1:2:3:4:5:6", "2001:0db8:0001:0002::9", "[2001:db8:1:2::1]", "2001:db8:1:2::1%eth0"]) {
      expect(clientAddress(spelling, undefined, 0), spelling).toBe(key);
    }
    expect(clientAddress("2001:db8:1:3::1", undefined, 0)).toBe("2001:db8:1:3::/64");
    expect(clientAddress("::ffff:192.0.2.7", undefined, 0)).toBe("192.0.2.7");
    expect(clientAddress("10.0.0.1", "2001:db8:aa:bb::1", 1)).toBe("2001:db8:aa:bb::/64");
  });
});

describe("sliding window (the memory store's limiter)", () => {
  it("allows max per window, says what remains, and when the window resets", async () => {
    let now = 10_000;
    const limiter = new MemoryLimiter(3, 1000, () => now);
    expect(await limiter.limit("a")).toEqual({ success: true, limit: 3, remaining: 2, reset: 11_000 });
    expect((await limiter.limit("a")).remaining).toBe(1);
    expect((await limiter.limit("a")).remaining).toBe(0);
    expect(await limiter.limit("a")).toEqual({ success: false, limit: 3, remaining: 0, reset: 11_000 });
    expect((await limiter.limit("b")).success).toBe(true); // per key
    now = 10_999;
    expect((await limiter.limit("a")).success).toBe(false);
  });

  it("weighs the previous window by how much of it still overlaps, and counts only what it allowed", async () => {
    let now = 10_000;
    const limiter = new MemoryLimiter(4, 1000, () => now);
    for (let i = 0; i < 6; i++) await limiter.limit("a"); // 4 allowed, 2 refused (not counted)
    now = 11_250; // 3/4 of the previous window still overlaps: floor(4 × 0.75) = 3 used
    expect(await limiter.limit("a")).toMatchObject({ success: true, remaining: 0 });
    expect((await limiter.limit("a")).success).toBe(false);
    now = 11_750; // a quarter overlaps: floor(4 × 0.25) + 1 = 2 used
    expect(await limiter.limit("a")).toMatchObject({ success: true, remaining: 1 });
    now = 13_100; // two windows on: nothing carries over
    expect(await limiter.limit("a")).toMatchObject({ success: true, remaining: 3 });
  });
});

describe("waiting reads per address", () => {
  it("gives out at most max places per address, each released once however often it is called", () => {
    const waiting = new AddressSlots(2);
    const first = waiting.enter("a")!;
    const second = waiting.enter("a")!;
    expect(waiting.enter("a")).toBeNull();
    expect(waiting.enter("b")).not.toBeNull();
    first();
    first();
    const third = waiting.enter("a");
    expect(third).not.toBeNull();
    expect(waiting.enter("a")).toBeNull(); // the double release freed one place, not two
    second();
    third!();
    expect(waiting.enter("a")).not.toBeNull();
  });
});

describe("verified tokens", () => {
  it("remembers tokens that worked, forgetting the oldest past its bound", () => {
    const verified = new VerifiedPeers(2);
    verified.add("h1");
    verified.add("h2");
    verified.add("h1"); // already known: no reordering needed to keep it
    expect([verified.has("h1"), verified.has("h2"), verified.has("h3")]).toEqual([true, true, false]);
    verified.add("h3");
    expect([verified.has("h1"), verified.has("h2"), verified.has("h3")]).toEqual([false, true, true]);
  });
});
