import { Agent, request, type IncomingMessage } from "node:http";
import { extractTs } from "../payload.js";
import type { ClientFactory, ClientOptions } from "./types.js";
import { settleReply, type ReplyWaiter } from "./replies.js";

const EVENT_END = Buffer.from("\n\n");

/**
 * Clients on ArqonBus's fallback transport as `@arqon/sdk`'s "http-stream" speaks it (docs/protocol.md, "Fallback
 * transports"): one `GET /ws/sse` event stream per connection with the bearer header, frames up by `POST /ws/send`,
 * one POST in flight per connection and the publishes queued meanwhile sent together as ndjson (as the SDK does).
 */
export function makeSseFactory(tenant: string) {
  return async function createClientFactory(opts: ClientOptions): Promise<ClientFactory> {
    const { SignJWT } = await import("jose");
    const key = new TextEncoder().encode(opts.secret);
    const claims = { tenant, caps: { sub: ["**"], pub: ["**"] } };
    const tokens = new Map<number, string>();
    const mint = (i: number): Promise<string> =>
      new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setSubject(`user-${i}`).setIssuedAt().setExpirationTime("2h").sign(key);
    // POSTs of every connection of this client process share keep-alive sockets.
    const agent = new Agent({ keepAlive: true, maxSockets: 256 });
    return {
      async prepare(from, count) {
        for (let i = from; i < from + count; i++) if (!tokens.has(i)) tokens.set(i, await mint(i));
      },
      async connect(index, hooks) {
        const token = tokens.get(index) ?? (await mint(index));
        tokens.delete(index);
        return new Promise((resolve, reject) => {
          let session = "";
          let welcomed = false;
          let held: Buffer | undefined;
          const replies = new Map<string, ReplyWaiter>();
          let nextReq = 1;
          const queue: string[] = [];
          let posting = false;
          let res: IncomingMessage | undefined;
          const post = (): void => {
            if (posting || queue.length === 0) return;
            posting = true;
            const body = queue.join("\n");
            queue.length = 0;
            const req = request(
              {
                host: "127.0.0.1",
                port: opts.port,
                path: "/ws/send",
                method: "POST",
                agent,
                headers: { "content-type": "application/x-ndjson", "x-arqon-session": session, "content-length": Buffer.byteLength(body) },
              },
              (r) => {
                r.resume();
                r.on("end", () => {
                  posting = false;
                  post();
                });
              },
            );
            req.on("error", () => (posting = false));
            req.end(body);
          };
          const send = (frame: string): void => {
            queue.push(frame);
            post();
          };
          /** Handles one event's bytes (`data: …` lines, maybe an `event:` or `id:` line). */
          const onEvent = (buf: Buffer, from: number, to: number): void => {
            if (welcomed) {
              const ts = extractTs(buf, from, to);
              if (ts >= 0) {
                hooks.onTs(ts);
                return;
              }
              if (replies.size === 0 && buf.indexOf("event: ping", from) !== from) return;
            }
            const text = buf.toString("utf8", from, to);
            const data = text.split("\n").find((l) => l.startsWith("data: "))?.slice(6);
            if (data === undefined) return;
            if (text.startsWith("event: ping")) return send('{"type":"pong"}');
            if (text.startsWith("event: session")) {
              session = (JSON.parse(data) as { session: string }).session;
              return;
            }
            if (text.startsWith("event: ")) return;
            const f = JSON.parse(data) as { type: string; requestId?: string; error?: { code: string; message: string } };
            if (!welcomed) {
              if (f.type === "welcome") {
                welcomed = true;
                resolve(conn);
              }
              return;
            }
            settleReply(replies, f);
          };
          const req = request({ host: "127.0.0.1", port: opts.port, path: "/ws/sse?protocol=1.1", headers: { authorization: `Bearer ${token}` } }, (r) => {
            res = r;
            if (r.statusCode !== 200) {
              reject(new Error(`stream refused: HTTP ${r.statusCode}`));
              r.resume();
              return;
            }
            r.on("data", (chunk: Buffer) => {
              const buf = held === undefined ? chunk : Buffer.concat([held, chunk]);
              let at = 0;
              for (let end = buf.indexOf(EVENT_END, at); end >= 0; end = buf.indexOf(EVENT_END, at)) {
                // Comments (": hb", ": arqon") and the retry line have no data.
                if (buf[at] !== 0x3a) onEvent(buf, at, end);
                at = end + 2;
              }
              held = at < buf.length ? buf.subarray(at) : undefined;
            });
            r.on("error", () => undefined);
          });
          req.on("error", reject);
          req.end();
          const conn = {
            subscribe: (room: string) =>
              new Promise<void>((res2, rej) => {
                const requestId = `s${nextReq++}`;
                replies.set(requestId, { resolve: res2, reject: rej });
                send(JSON.stringify({ type: "subscribe", room, requestId }));
              }),
            publish: (room: string, payload: string) => send(`{"type":"publish","room":${JSON.stringify(room)},"payload":${payload}}`),
            close: () => {
              res?.destroy();
              req.destroy();
            },
          };
        });
      },
    };
  };
}
