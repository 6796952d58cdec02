/** A room's chat beside a call: history on arrival, live messages, a box to send from. */
import { SignalingError, type ChatMessage, type SignalingClient } from "../../lib/client/signaling-client.js";

const PANEL = `<strong>Chat</strong><ol class="messages"></ol>
<form class="row"><input maxlength="2000" autocomplete="off" aria-label="Message" class="grow"><button type="submit">Send</button></form>
<p class="error" role="alert"></p>`;

export function mountChat(root: HTMLElement, client: SignalingClient) {
  root.innerHTML = PANEL;
  root.hidden = false;
  const list = root.querySelector("ol")!;
  const input = root.querySelector("input")!;
  const error = root.querySelector<HTMLElement>(".error")!;

  const show = (m: ChatMessage) => {
    const li = document.createElement("li");
    const who = document.createElement("b");
    who.textContent = `${m.from === client.peerId ? "You" : m.name ?? "Guest"}: `;
    li.append(who, m.text);
    list.append(li);
    li.scrollIntoView({ block: "nearest" });
  };

  void client.chatHistory().then((history) => history.forEach(show), () => {});
  client.onMessage((m) => {
    if (m.type === "chat") show(m);
  });
  root.querySelector("form")!.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    error.textContent = "";
    try {
      show(await client.sendChat(text));
    } catch (e) {
      error.textContent = e instanceof SignalingError && e.status === 429 ? "You are sending messages too fast; wait a moment." : `Message not sent: ${(e as Error).message}`;
    }
  });
}
