import { ArqonClient, type ClientStatus, type PresenceMember, type Room, type RoomMessage } from "@arqon/sdk";

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);
const user = params.get("user") ?? `guest-${Math.floor(Math.random() * 1e4)}`;
$("me").textContent = user;

/** Every status the page went through, for people (and tests) who want the history. */
const statusLog: string[] = [];
(window as unknown as { arqonStatusLog: string[] }).arqonStatusLog = statusLog;

const client = new ArqonClient(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`, {
  async getToken() {
    const res = await fetch(`/token?user=${encodeURIComponent(user)}`);
    if (!res.ok) throw new Error(`token endpoint answered ${res.status}`);
    return ((await res.json()) as { token: string }).token;
  },
  reconnect: { initialDelayMs: 250, maxDelayMs: 3000 },
});

function showStatus(s: ClientStatus): void {
  const el = $("status");
  let text: string = s.type;
  if (s.type === "connected" && s.reconnected) text = "connected (reconnected)";
  if (s.type === "reconnecting") text = `reconnecting (attempt ${s.attempt})`;
  if (s.type === "disconnected") text = `disconnected (${s.code})`;
  el.textContent = text;
  el.dataset.status = s.type;
  if (s.type === "connected") el.dataset.reconnected = String(s.reconnected);
  statusLog.push(text);
}
client.on("status", showStatus);

function addLine(text: string, cls?: string): void {
  const li = document.createElement("li");
  li.textContent = text;
  if (cls) li.className = cls;
  $("messages").append(li);
  li.scrollIntoView({ block: "end" });
}

function showMembers(members: PresenceMember[]): void {
  const list = $("members");
  list.replaceChildren(
    ...[...new Set(members.map((m) => m.userId))].sort().map((name) => {
      const li = document.createElement("li");
      li.textContent = name;
      if (name === user) li.dataset.me = "";
      return li;
    }),
  );
}

let room: Room | undefined;
const offs: Array<() => void> = [];

async function join(name: string): Promise<void> {
  if (room) {
    for (const off of offs.splice(0)) off();
    await room.unsubscribe();
  }
  $("messages").replaceChildren();
  $("room-name").textContent = name;
  const r = client.room(name);
  room = r;
  offs.push(
    r.presence.on("change", showMembers),
    r.presence.on("join", (m) => m.userId !== user && addLine(`${m.userId} joined`, "notice")),
    r.presence.on("leave", (m) => m.userId !== user && addLine(`${m.userId} left`, "notice")),
    r.on("subscribed", (e) => {
      if (e.resubscribed) addLine(e.recovered ? "back online, nothing missed" : `back online (${e.reason ?? "new session"})`, "notice");
    }),
  );
  const seen = new Set<string>();
  const onMessage = (m: RoomMessage): void => {
    if (seen.has(m.id)) return;
    seen.add(m.id);
    const payload = m.payload as { text?: string };
    addLine(`${m.sender ?? "?"}: ${payload.text ?? ""}`, m.sender === user ? "me" : undefined);
  };
  await r.subscribe(onMessage, { meta: { name: user } });
  const history = await r.history({ reverse: true, limit: 20 });
  for (const m of history.messages.sort((a, b) => a.offset - b.offset)) onMessage(m);
}

$("join-form").addEventListener("submit", (event) => {
  event.preventDefault();
  void join($<HTMLInputElement>("room").value.trim() || "lobby").catch((err: Error) => addLine(`cannot join: ${err.message}`, "notice"));
});

$("send-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $<HTMLInputElement>("text");
  const text = input.value.trim();
  if (!text || !room) return;
  input.value = "";
  room.publish({ text }, { echo: true }).catch((err: Error) => addLine(`not sent: ${err.message}`, "notice"));
});

await client.connect();
await join(params.get("room") ?? "lobby");
document.body.dataset.ready = "true";
