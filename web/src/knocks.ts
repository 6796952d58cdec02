/** A lobby room's knocks, for its host: each with Admit / Deny, until it is answered, leaves or its wait ends. */
import { SignalingError, type SignalingClient } from "../../lib/client/signaling-client.js";

/** Shows knocks in `panel` (a list inside it, hidden while empty); returns what takes it down. */
export function mountKnocks(panel: HTMLElement, client: SignalingClient, onError: (text: string) => void): () => void {
  const list = panel.querySelector("ul")!;
  const drop = (peerId: string) => {
    list.querySelector(`li[data-knock="${peerId}"]`)?.remove();
    panel.hidden = !list.children.length;
  };
  const show = (peer: { peerId: string; name: string | null }, expiresAt: number) => {
    const row = document.createElement("li");
    row.dataset.knock = peer.peerId;
    row.innerHTML = `<span class="name"></span><button class="admit">Admit</button><button class="deny secondary">Deny</button>`;
    row.querySelector(".name")!.textContent = peer.name ?? `Guest ${peer.peerId.slice(0, 4)}`;
    const answer = (allow: boolean) => async () => {
      row.querySelectorAll("button").forEach((b) => b.setAttribute("disabled", ""));
      try {
        await client.admit(peer.peerId, allow);
      } catch (e) {
        // Gone meanwhile (it left, or its wait ended): nothing to answer.
        if (!(e instanceof SignalingError && e.code === "peer_not_found")) onError(`Could not answer: ${(e as Error).message}`);
      }
      drop(peer.peerId);
    };
    row.querySelector(".admit")!.addEventListener("click", answer(true));
    row.querySelector(".deny")!.addEventListener("click", answer(false));
    list.append(row);
    panel.hidden = false;
    setTimeout(() => drop(peer.peerId), Math.max(0, expiresAt - Date.now()));
  };
  list.replaceChildren();
  panel.hidden = true;
  const off = client.onMessage((m) => {
    if (m.type === "knock") show(m.peer, m.expiresAt);
    else if (m.type === "peer-left") drop(m.peerId);
  });
  return () => {
    off();
    list.replaceChildren();
    panel.hidden = true;
  };
}
