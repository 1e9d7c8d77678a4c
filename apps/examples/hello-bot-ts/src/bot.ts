import { ArqonClient, type RoomMessage } from "@arqon/sdk";

export interface HelloBotOptions {
  url: string;
  token: string;
  /** @default "lobby" */
  room?: string;
  /** @default "hello-bot" */
  name?: string;
  log?: (line: string) => void;
}

export interface HelloBot {
  readonly client: ArqonClient;
  stop(): Promise<void>;
}

const HELLO = /\b(hello|hi|hey)\b/i;

/** Text of a chat-style payload: `"hi"` or `{ text: "hi" }`. */
function textOf(message: RoomMessage): string | undefined {
  const p = message.payload;
  if (typeof p === "string") return p;
  if (p && typeof p === "object" && typeof (p as { text?: unknown }).text === "string") return (p as { text: string }).text;
  return undefined;
}

/** Connects, joins `room`, and answers every message that says hello with a greeting to its sender. */
export async function startHelloBot(options: HelloBotOptions): Promise<HelloBot> {
  const log = options.log ?? (() => undefined);
  const name = options.name ?? "hello-bot";
  const client = new ArqonClient(options.url, { token: options.token });
  client.on("status", (s) => log(`status: ${s.type}${s.type === "disconnected" ? ` (${s.code} ${s.reason})` : ""}`));
  client.on("error", (err) => log(`error: ${err.code} ${err.message}`));
  await client.connect();
  const room = client.room(options.room ?? "lobby");
  await room.subscribe(
    (message) => {
      const text = textOf(message);
      if (text === undefined || !HELLO.test(text)) return;
      room.publish({ text: `hello, ${message.sender ?? "stranger"}!`, from: name }).then(
        (ack) => log(`answered ${message.sender ?? "?"} (offset ${ack.offset})`),
        (err: Error & { code?: string }) => log(`could not answer: ${err.code ?? ""} ${err.message}`),
      );
    },
    { meta: { name, bot: true } },
  );
  log(`listening in "${room.name}"`);
  return { client, stop: () => client.close() };
}
