import { parseJsonBytes, toBase64, type Frame } from "@arqon/core";
import type { CliIo } from "../index.js";
import { CliSession } from "../session.js";
import { parseArgs } from "node:util";
import { CLIENT_FLAGS, wsUrl } from "./client-args.js";

const HELP = `usage: arqon tail <room> [--url URL] [--token JWT] [--since OFFSET --epoch EPOCH] [--json] [--count N]
Follows a room and prints each message as it arrives (the token comes from --token or ARQON_TOKEN).
With --since/--epoch it first replays what was missed after that position.`;

function line(frame: Frame): string {
  const payload =
    frame.payload === undefined ? "" : frame.payloadFormat === "binary" ? `<${frame.payload.length} bytes> ${toBase64(frame.payload)}` : JSON.stringify(parseJsonBytes(frame.payload));
  const at = frame.timestamp ? new Date(frame.timestamp).toISOString() : "";
  return `#${frame.offset ?? "?"} ${at} ${frame.sender ?? "?"}: ${payload}`;
}

export async function tailCommand(argv: readonly string[], io: CliIo, env: NodeJS.ProcessEnv = process.env, signal?: AbortSignal): Promise<number> {
  const { values, positionals } = parseArgs({ args: [...argv], options: {
    ...CLIENT_FLAGS,
    since: { type: "string" },
    epoch: { type: "string" },
    count: { type: "string" },
  }, allowPositionals: true, strict: true });
  const room = positionals[0];
  if (values.help || !room) {
    (values.help ? io.out : io.err)(HELP);
    return values.help ? 0 : 2;
  }
  const limit = values.count === undefined ? Infinity : Number(values.count);
  const url = wsUrl(values.url as string | undefined, env);
  let session: CliSession;
  try {
    ({ session } = await CliSession.connect(url, (values.token as string | undefined) ?? env.ARQON_TOKEN));
  } catch (err) {
    io.err(`arqon tail: ${(err as Error).message}`);
    return 1;
  }
  let seen = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const print = (frame: Frame): void => {
    if (seen >= limit) return;
    io.out(values.json ? JSON.stringify({ ...frame, payload: frame.payload && parseJsonSafe(frame) }) : line(frame));
    if (++seen >= limit) done();
  };
  // Live messages that arrive before the subscribe reply is handled wait, so the replayed ones (which protocol 1.1
  // carries inside the reply) are printed first.
  let held: Frame[] | null = [];
  session.onFrame((frame) => {
    if (frame.type !== "message" || frame.room !== room) return;
    if (held) held.push(frame);
    else print(frame);
  });
  const sub: Frame = { type: "subscribe", room };
  if (values.since !== undefined) sub.since = { offset: Number(values.since), epoch: (values.epoch as string | undefined) ?? "" };
  const reply = await session.request(sub);
  if (reply.type === "error") {
    io.err(`arqon tail: ${reply.error?.code}: ${reply.error?.message}`);
    await session.close();
    return 1;
  }
  io.err(`tailing ${room} at offset ${reply.offset ?? 0} (epoch ${reply.epoch ?? "?"})${reply.recovered === false ? `, not recovered: ${reply.reason}` : ""}`);
  for (const m of reply.messages ?? []) print(m.room === undefined ? { ...m, room } : m);
  const waiting = held;
  held = null;
  for (const m of waiting) print(m);
  signal?.addEventListener("abort", () => done(), { once: true });
  const closed = session.closed.then((c) => c);
  const result = await Promise.race([finished.then(() => undefined), closed]);
  if (result) {
    io.err(`arqon tail: connection closed (${result.code} ${result.reason})`);
    return result.code === 1000 || result.code === 1001 ? 0 : 1;
  }
  await session.close();
  return 0;
}

function parseJsonSafe(frame: Frame): unknown {
  if (frame.payloadFormat === "binary") return toBase64(frame.payload!);
  return parseJsonBytes(frame.payload!);
}
