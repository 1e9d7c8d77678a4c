import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import WebSocket from "ws";
import { decodeFrame, encodeJson, jsonBytes, parseJsonBytes, type Frame } from "@arqon/core";
import type { CliIo } from "../index.js";
import { CLIENT_FLAGS, wsUrl } from "./client-args.js";

const HELP = `usage: arqon casil reload --file F [--url URL] [--token JWT] [--json]
       arqon casil get [--url URL] [--token JWT]
reload sends the policy file (JSON or YAML) to op.casil.reload; the gateway validates it completely and swaps it
in, or answers VALIDATION_ERROR and keeps the old policy. get prints the active policy (op.casil.get). Both need an
admin token (--token or ARQON_TOKEN).`;

const TIMEOUT_MS = 10_000;

/** Sends one command frame on a fresh connection and resolves with the reply that carries its request id. */
async function sendCommand(url: string, token: string | undefined, command: string, args: unknown): Promise<Frame> {
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const ws = new WebSocket(url, { headers });
  const requestId = `casil-${Date.now().toString(36)}`;
  try {
    return await new Promise<Frame>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no reply within ${TIMEOUT_MS / 1000} s`)), TIMEOUT_MS);
      const fail = (err: Error): void => {
        clearTimeout(timer);
        reject(err);
      };
      ws.on("unexpected-response", (_req, res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          let detail = "";
          try {
            const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { error?: { code: string; message: string } };
            if (body.error) detail = `: ${body.error.code}: ${body.error.message}`;
          } catch {
            // not JSON: the status alone says it
          }
          fail(new Error(`connection refused with HTTP ${res.statusCode}${detail}`));
        });
      });
      ws.on("error", fail);
      ws.on("close", (code, reason) => fail(new Error(`connection closed (${code}${reason.length ? ` ${reason.toString()}` : ""})`)));
      ws.on("message", (data: Buffer, isBinary: boolean) => {
        const decoded = decodeFrame(isBinary ? new Uint8Array(data) : data.toString("utf8"), { from: "any" });
        if (!decoded.ok) return;
        const frame = decoded.frame;
        if (frame.type === "welcome") {
          const request: Frame = { type: "command", command, requestId };
          if (args !== undefined) request.args = jsonBytes(args);
          ws.send(encodeJson(request));
          return;
        }
        if (frame.requestId === requestId) {
          clearTimeout(timer);
          resolve(frame);
        }
      });
    });
  } finally {
    ws.removeAllListeners("close");
    ws.on("error", () => undefined);
    ws.close();
  }
}

/** `arqon casil reload --file F` and `arqon casil get`. Exit codes: 0 ok, 1 refused or unreachable, 2 usage. */
export async function casilCommand(argv: readonly string[], io: CliIo = { out: console.log, err: console.error }, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { values, positionals } = parseArgs({ args: [...argv], options: { ...CLIENT_FLAGS, file: { type: "string", short: "f" } }, allowPositionals: true, strict: true });
  const [sub] = positionals;
  if (values.help || (sub !== "reload" && sub !== "get") || (sub === "reload" && !values.file)) {
    (values.help ? io.out : io.err)(HELP);
    return values.help ? 0 : 2;
  }
  let args: unknown;
  if (sub === "reload") {
    try {
      args = { policy: await readFile(values.file as string, "utf8") };
    } catch (err) {
      io.err(`arqon casil: cannot read ${values.file as string}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      return 1;
    }
  }
  let reply: Frame;
  try {
    reply = await sendCommand(wsUrl(values.url as string | undefined, env), (values.token as string | undefined) ?? env.ARQON_TOKEN, `op.casil.${sub}`, args);
  } catch (err) {
    io.err(`arqon casil: ${(err as Error).message}`);
    return 1;
  }
  if (reply.type === "error" || reply.status === "error") {
    io.err(`arqon casil: ${reply.error?.code ?? "ERROR"}: ${reply.error?.message ?? ""}`);
    return 1;
  }
  const result = reply.payload ? parseJsonBytes(reply.payload) : undefined;
  if (values.json || sub === "get") io.out(JSON.stringify(result, null, values.json ? undefined : 2));
  else {
    const r = result as { version: number; previousVersion: number };
    io.out(`casil policy reloaded: version ${r.version} (was ${r.previousVersion})`);
  }
  return 0;
}
