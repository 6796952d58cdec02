/** A viewer's live connection figures, from getStats() once a second. */
export function watchStats(pc: RTCPeerConnection, show: (name: string, value: string) => void): () => void {
  let last: { bytes: number; at: number } | null = null;
  const timer = setInterval(async () => {
    if (pc.connectionState === "closed") return;
    const report = await pc.getStats();
    let pairId: string | undefined;
    report.forEach((s) => {
      if (s.type === "transport" && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
    });
    report.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") {
        if (s.frameWidth) show("resolution", `${s.frameWidth}×${s.frameHeight}`);
        if (s.framesPerSecond !== undefined) show("fps", `${Math.round(s.framesPerSecond)}`);
        show("lost", String(s.packetsLost ?? 0));
        if (last) show("bitrate", `${Math.round(((s.bytesReceived - last.bytes) * 8) / (s.timestamp - last.at))} kbit/s`);
        last = { bytes: s.bytesReceived, at: s.timestamp };
      }
      if (s.type === "candidate-pair" && s.id === pairId) {
        if (s.currentRoundTripTime !== undefined) show("rtt", `${Math.round(s.currentRoundTripTime * 1000)} ms`);
        const local = report.get(s.localCandidateId);
        if (local) show("path", `${local.candidateType}${local.candidateType === "relay" ? " (TURN)" : ""}`);
      }
    });
  }, 1000);
  return () => clearInterval(timer);
}
