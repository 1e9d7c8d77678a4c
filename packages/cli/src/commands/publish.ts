import { jsonBytes } from "@arqon/core";
import type { CliIo } from "../index.js";
import { CliSession } from "../session.js";
import { parseArgs } from "node:util";
import { CLIENT_FLAGS, wsUrl } from "./client-args.js";

const HELP = `usage: arqon publish <room> <json> [--url URL] [--token JWT] [--idempotency-key K] [--twist-id T]
Publishes one JSON payload into a room and prints the ack (id, offset, epoch).`;

export async function publishCommand(argv: readonly string[], io: CliIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { values, positionals } = parseArgs({ args: [...argv], options: {
    ...CLIENT_FLAGS,
    "idempotency-key": { type: "string" },
    "twist-id": { type: "string" },
  }, allowPositionals: true, strict: true });
  const [room, text] = positionals;
  if (values.help || !room || text === undefined) {
    (values.help ? io.out : io.err)(HELP);
    return values.help ? 0 : 2;
  }
  let payload: unknown;
  try {
    payload = JSON.parse(text);
  } catch {
    payload = text; // plain words are published as a JSON string
  }
  let session: CliSession;
  try {
    ({ session } = await CliSession.connect(wsUrl(values.url as string | undefined, env), (values.token as string | undefined) ?? env.ARQON_TOKEN));
  } catch (err) {
    io.err(`arqon publish: ${(err as Error).message}`);
    return 1;
  }
  try {
    const reply = await session.request({
      type: "publish",
      room,
      payload: jsonBytes(payload),
      ...(values["idempotency-key"] ? { idempotencyKey: values["idempotency-key"] as string } : {}),
      ...(values["twist-id"] ? { headers: { "x-twist-id": values["twist-id"] as string } } : {}),
    });
    if (reply.type !== "ack") {
      io.err(`arqon publish: ${reply.error?.code ?? reply.type}: ${reply.error?.message ?? ""}`);
      return 1;
    }
    io.out(values.json ? JSON.stringify({ id: reply.id, offset: reply.offset, epoch: reply.epoch }) : `published ${reply.id} at offset ${reply.offset} (epoch ${reply.epoch})`);
    return 0;
  } finally {
    await session.close();
  }
}
