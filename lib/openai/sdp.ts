import type { CandidateInput } from "../schemas.js";

type Candidate = CandidateInput["candidates"][number];

/** Whether a trickled candidate ends all gathering: null, or an empty one naming no section. */
export const endsGathering = (c: Candidate) => !c || (!c.candidate && c.sdpMid == null && c.sdpMLineIndex == null);

/**
 * Writes trickled candidates into an offer, each into its m-section (by sdpMid, else by
 * sdpMLineIndex), because the upstream takes no trickle ICE. End markers become
 * `a=end-of-candidates`: null ends every section; an empty candidate naming its section (as
 * Firefox sends one per section) ends that section only, and ends all if it names none.
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
  const sectionOf = (c: NonNullable<Candidate>) =>
    (c.sdpMid != null ? media.find((s) => s.includes(`a=mid:${c.sdpMid}`)) : undefined) ?? (c.sdpMLineIndex != null ? media[c.sdpMLineIndex] : undefined);
  const ended = new Set<string[]>();
  for (const c of candidates) {
    if (!c || endsGathering(c)) {
      media.forEach((s) => ended.add(s));
      continue;
    }
    const target = sectionOf(c);
    const line = `a=${c.candidate.replace(/^a=/, "")}`;
    if (!target) continue;
    if (!c.candidate) ended.add(target);
    else if (!target.includes(line)) target.push(line);
  }
  for (const s of ended) if (!s.includes("a=end-of-candidates")) s.push("a=end-of-candidates");
  return sections.flat().join(eol) + eol;
}
