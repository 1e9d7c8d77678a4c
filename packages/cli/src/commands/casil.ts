import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import WebSocket from "ws";
import { decodeFrame, encodeJson, jsonBytes, parseJsonBytes, type Frame } from "@arqon/core";
import type { CliIo } from "../index.js";
import { CliError } from "../config.js";
import { wsUrl } from "./client-args.js";
import { OPERATOR_FLAGS, OperatorClient, seg, type OperatorContext } from "./operator-client.js";

const HELP = `usage: arqon casil reload (--file F | --mode enforce|monitor | --clear) [--dry-run] [--tenant T | --baseline]
       arqon casil get [--tenant T | --baseline]
CASIL has two layers: the server's baseline (the operator's: it applies to every tenant and no tenant can weaken it)
and one layer per tenant (its admin's: more rules, redactions, Wasm modules as base64, or mode enforce for its own
traffic). reload validates completely and swaps in, or answers VALIDATION_ERROR and changes nothing; --dry-run only
validates and says what would change; --mode is the earlier system's patch ({"mode":"enforce"}); --clear removes a
tenant's layer. get prints the baseline's public part and the layer.
With a token of role "admin" (--token or ARQON_TOKEN) and no --tenant/--baseline, it acts on the token's own tenant
through op.casil.* on the WebSocket. With an operator key (--operator-key, ARQON_OPERATOR_KEY, or the dev key file)
it uses the server API: --baseline (the default) or --tenant T.
  --url URL            ws://host:port/ws or http://host:port (ARQON_URL)`;

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

function describeResult(result: Record<string, unknown>, what: string): string {
  const changes = Array.isArray(result.changes) && result.changes.length > 0 ? `: ${(result.changes as string[]).join("; ")}` : "";
  if (result.dryRun) return `dry run: ${what} would become version ${String(result.version)} (is ${String(result.previousVersion)})${changes}`;
  return `${what} reloaded: version ${String(result.version)} (was ${String(result.previousVersion)})${changes}`;
}

/** `arqon casil reload` and `arqon casil get`. Exit codes: 0 ok, 1 refused or unreachable, 2 usage. */
export async function casilCommand(argv: readonly string[], io: CliIo, ctx: OperatorContext): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: {
      ...OPERATOR_FLAGS,
      file: { type: "string", short: "f" },
      mode: { type: "string" },
      clear: { type: "boolean" },
      "dry-run": { type: "boolean" },
      tenant: { type: "string" },
      baseline: { type: "boolean" },
    },
    allowPositionals: true,
    strict: true,
  });
  const [sub] = positionals;
  if (values.help) {
    io.out(HELP);
    return 0;
  }
  if (sub !== "reload" && sub !== "get") throw new CliError("casil needs get or reload (see arqon casil --help)");
  if (values.tenant !== undefined && values.baseline) throw new CliError("give --tenant or --baseline, not both");
  let args: Record<string, unknown> | undefined;
  if (sub === "reload") {
    const given = [values.file !== undefined, values.mode !== undefined, values.clear === true].filter(Boolean).length;
    if (given !== 1) throw new CliError("reload needs exactly one of --file F, --mode enforce|monitor or --clear");
    if (values.mode !== undefined && values.mode !== "enforce" && values.mode !== "monitor") throw new CliError('--mode must be "enforce" or "monitor"');
    if (values.clear && values.baseline) throw new CliError("the baseline cannot be cleared");
    args = {};
    if (values.file !== undefined) {
      try {
        args.policy = await readFile(values.file, "utf8");
      } catch (err) {
        io.err(`arqon casil: cannot read ${values.file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        return 1;
      }
    }
    if (values.mode !== undefined) args.mode = values.mode;
    if (values.clear) args.clear = true;
    if (values["dry-run"]) args.dryRun = true;
  }
  const token = values.token ?? (values["operator-key"] === undefined && ctx.env.ARQON_OPERATOR_KEY === undefined ? ctx.env.ARQON_TOKEN : undefined);
  if (token !== undefined && values.tenant === undefined && !values.baseline) {
    // A tenant admin's own layer, through the WebSocket command.
    let reply: Frame;
    try {
      reply = await sendCommand(wsUrl(values.url, ctx.env), token, `op.casil.${sub}`, args);
    } catch (err) {
      io.err(`arqon casil: ${(err as Error).message}`);
      return 1;
    }
    if (reply.type === "error" || reply.status === "error") {
      io.err(`arqon casil: ${reply.error?.code ?? "ERROR"}: ${reply.error?.message ?? ""}`);
      return 1;
    }
    const result = reply.payload ? (parseJsonBytes(reply.payload) as Record<string, unknown>) : {};
    if (values.json || sub === "get") io.out(JSON.stringify(result, null, values.json ? undefined : 2));
    else io.out(describeResult(result, `casil layer of tenant ${String(result.tenant)}`));
    return 0;
  }
  const client = OperatorClient.fromFlags(values, ctx, values.tenant !== undefined ? "tenant-admin" : "operator");
  const path = values.tenant !== undefined ? `/api/v1/tenants/${seg(values.tenant)}/casil` : "/api/v1/casil/baseline";
  try {
    const result = await client.request<Record<string, unknown>>(sub === "get" ? "GET" : "PUT", path, args);
    if (values.json || sub === "get") io.out(JSON.stringify(result, null, values.json ? undefined : 2));
    else io.out(describeResult(result, values.tenant !== undefined ? `casil layer of tenant ${values.tenant}` : "casil baseline"));
    return 0;
  } catch (err) {
    return client.report(io, "casil", err, ctx);
  }
}
