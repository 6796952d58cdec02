/** Trickled candidates written into an offer for an upstream that takes no trickle ICE. */
import { describe, expect, test } from "vitest";
import { endsGathering, withCandidates } from "../lib/openai/sdp.js";

const OFFER = ["v=0", "o=- 1 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0 1", "m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=mid:0", "m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "a=mid:1", ""].join("\r\n");
const A = "candidate:1 1 udp 2122260223 192.0.2.10 50000 typ host";
const B = "candidate:2 1 udp 2122260223 192.0.2.10 50001 typ host";
const sections = (sdp: string) => sdp.split(/\r\n(?=m=)/).slice(1).map((s) => s.split("\r\n").filter((l) => l.startsWith("a=") && !l.startsWith("a=mid")));

describe("withCandidates", () => {
  test("puts each candidate into its section, by sdpMid or else by index, once", () => {
    const sdp = withCandidates(OFFER, [{ candidate: A, sdpMid: "1" }, { candidate: B, sdpMLineIndex: 0 }, { candidate: `a=${A}`, sdpMid: "1" }]);
    expect(sections(sdp)).toEqual([[`a=${B}`], [`a=${A}`]]);
    expect(sdp.endsWith("\r\n")).toBe(true);
  });

  test("null ends every section", () => {
    expect(sections(withCandidates(OFFER, [{ candidate: A, sdpMid: "0" }, null]))).toEqual([[`a=${A}`, "a=end-of-candidates"], ["a=end-of-candidates"]]);
  });

  test("an empty candidate naming a section (Firefox's per-section marker) ends that section only", () => {
    const sdp = withCandidates(OFFER, [{ candidate: "", sdpMid: "1", sdpMLineIndex: 1 }, { candidate: A, sdpMid: "0" }]);
    expect(sections(sdp)).toEqual([[`a=${A}`], ["a=end-of-candidates"]]);
    expect(endsGathering({ candidate: "", sdpMid: "1", sdpMLineIndex: 1 })).toBe(false);
  });

  test("an empty candidate naming no section ends them all", () => {
    expect(sections(withCandidates(OFFER, [{ candidate: "" }]))).toEqual([["a=end-of-candidates"], ["a=end-of-candidates"]]);
    expect(endsGathering(null)).toBe(true);
    expect(endsGathering({ candidate: "" })).toBe(true);
    expect(endsGathering({ candidate: A, sdpMid: "0" })).toBe(false);
  });
});

describe("withCandidates, as offers come", () => {
  test("keeps an offer's line endings and gives it a final one", () => {
    const lf = OFFER.replaceAll("\r\n", "\n").trimEnd();
    const sdp = withCandidates(lf, [{ candidate: A, sdpMid: "0" }]);
    expect(sdp).toBe(`${lf.replace("a=mid:0", `a=mid:0\na=${A}`)}\n`);
    expect(withCandidates(OFFER.trimEnd(), [])).toBe(OFFER);
  });

  test("a section named by index alone, or by a mid the offer lacks and an index, is found; one found by neither is skipped", () => {
    expect(sections(withCandidates(OFFER, [{ candidate: A, sdpMid: null, sdpMLineIndex: 1 }]))).toEqual([[], [`a=${A}`]]);
    expect(sections(withCandidates(OFFER, [{ candidate: A, sdpMid: "9", sdpMLineIndex: 0 }]))).toEqual([[`a=${A}`], []]);
    expect(sections(withCandidates(OFFER, [{ candidate: A, sdpMid: "9" }, { candidate: "", sdpMid: "9" }]))).toEqual([[], []]);
  });

  test("a per-section end marker works by mid or by index alone, and is written once", () => {
    expect(sections(withCandidates(OFFER, [{ candidate: "", sdpMid: "0" }]))).toEqual([["a=end-of-candidates"], []]);
    expect(sections(withCandidates(OFFER, [{ candidate: "", sdpMLineIndex: 1 }]))).toEqual([[], ["a=end-of-candidates"]]);
    expect(endsGathering({ candidate: "", sdpMLineIndex: 1 })).toBe(false);
    const ended = withCandidates(OFFER, [null]);
    expect(withCandidates(ended, [null, { candidate: "", sdpMid: "0" }])).toBe(ended);
  });
});
