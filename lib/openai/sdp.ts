import type { CandidateInput } from "../schemas.js";

type Candidate = CandidateInput["candidates"][number];

/**
 * Writes trickled candidates into an offer, each into its m-section (by sdpMid, else by
 * sdpMLineIndex), because the upstream takes no trickle ICE. A null (or empty) candidate
 * marks the end of gathering: every section gets `a=end-of-candidates`.
 */
export function withCandidates(sdp: string, candidates: Candidate[]): string {
  const eol = sdp.includes("\r\n") ? "\r\n" : "\n";
  const lines = sdp.split(/\r?\n/);
  if (lines.at(-1) === "") lines.pop();
  const sections: string[][] = [[]];
  for (const line of lines) {
    if (line.startsWith("m=")) sections.push([]);
    sections.at(-1)!.push(line);
  }
  const media = sections.slice(1);
  const ended = candidates.some((c) => !c || !c.candidate);
  for (const c of candidates) {
    if (!c || !c.candidate) continue;
    const byMid = c.sdpMid != null ? media.find((s) => s.includes(`a=mid:${c.sdpMid}`)) : undefined;
    const target = byMid ?? (c.sdpMLineIndex != null ? media[c.sdpMLineIndex] : undefined);
    const line = `a=${c.candidate.replace(/^a=/, "")}`;
    if (target && !target.includes(line)) target.push(line);
  }
  if (ended) for (const s of media) if (!s.includes("a=end-of-candidates")) s.push("a=end-of-candidates");
  return sections.flat().join(eol) + eol;
}
