import WebSocket from "ws";
import { LATEST_PROTOCOL_VERSION, decodeFrame, encodeJson, expandMessage, type Frame, type ProtocolVersion } from "@arqon/core";

/**
 * A short-lived WebSocket session for CLI commands: connect with a token, send requests, read frames. Long-lived
 * application clients should use @arqon/sdk (reconnect, recovery); the CLI wants plain, fail-fast behaviour.
 *
 * It speaks protocol 1.1 when the server does, and hands out every frame in its 1.0 form: a compact message gets the
 * epoch its room's subscription was last told and its default headers back (`expandMessage`), so commands print the
 * same thing against any server.
 */
export class CliSession {
  private counter = 0;
  /** The protocol version in force (from `welcome`). */
  private protocol = "1.0";
  /** Per room, the epoch the server last told this connection (subscribed replies, messages that carried one). */
  private readonly epochs = new Map<string, string>();
  private readonly pending = new Map<string, { resolve(f: Frame): void; reject(e: Error): void }>();
  private listener: ((frame: Frame) => void) | undefined;
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(private readonly ws: WebSocket) {
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      const result = decodeFrame(isBinary ? new Uint8Array(data) : data.toString("utf8"), { from: "any" });
      if (!result.ok) return;
      const frame = this.expand(result.frame);
      const waiter = frame.requestId === undefined ? undefined : this.pending.get(frame.requestId);
      if (waiter && (frame.type !== "message" || frame.requestId)) {
        this.pending.delete(frame.requestId!);
        waiter.resolve(frame);
        return;
      }
      this.listener?.(frame);
    });
    this.closed = new Promise((resolve) => {
      ws.on("close", (code, reason) => {
        for (const w of this.pending.values()) w.reject(new Error(`connection closed (${code} ${reason.toString()})`));
        this.pending.clear();
        resolve({ code, reason: reason.toString() });
      });
    });
  }

  /** The 1.0 form of a frame received in the protocol in force; records the epochs the server told. */
  private expand(frame: Frame): Frame {
    if (frame.type === "welcome") this.protocol = frame.protocol ?? "1.0";
    if (this.protocol !== "1.1") return frame;
    const room = frame.room ?? "";
    if (frame.type === "subscribed") this.epochs.set(room, frame.epoch ?? "");
    if (frame.type === "message") {
      if (frame.epoch !== undefined) this.epochs.set(room, frame.epoch);
      return expandMessage(frame, this.epochs.get(room));
    } else if (frame.messages) return { ...frame, messages: frame.messages.map((m) => expandMessage(m, frame.epoch)) };
    return frame;
  }

  /**
   * Connects and waits for `welcome`; rejects with the server's HTTP status and error code on a refused upgrade.
   * `protocol`: the version asked for with `?protocol=` (unless the URL names one). @default "1.1"
   */
  static connect(
    url: string,
    token: string | undefined,
    timeoutMs = 10000,
    protocol: ProtocolVersion = LATEST_PROTOCOL_VERSION,
  ): Promise<{ session: CliSession; welcome: Frame }> {
    if (protocol !== "1.0" && !/[?&]protocol=/.test(url)) url += (url.includes("?") ? "&" : "?") + "protocol=" + protocol;
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers: token ? { authorization: `Bearer ${token}` } : {}, handshakeTimeout: timeoutMs });
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error(`no welcome from ${url} within ${timeoutMs} ms`));
      }, timeoutMs);
      ws.on("unexpected-response", (_req, res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString("utf8")));
        res.on("end", () => {
          clearTimeout(timer);
          let detail = body;
          try {
            const parsed = JSON.parse(body) as { error?: { code: string; message: string } };
            if (parsed.error) detail = `${parsed.error.code}: ${parsed.error.message}`;
          } catch {
            // not JSON; show it as it came
          }
          reject(new Error(`HTTP ${res.statusCode} ${detail}`.trim()));
        });
      });
      ws.on("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
      const session = new CliSession(ws);
      session.listener = (frame) => {
        if (frame.type === "welcome") {
          clearTimeout(timer);
          session.listener = undefined;
          resolve({ session, welcome: frame });
        }
      };
    });
  }

  onFrame(listener: (frame: Frame) => void): void {
    this.listener = listener;
  }

  /** Sends a request and resolves with its reply (an `error` frame resolves too; check `type`). */
  request(frame: Frame, timeoutMs = 10000): Promise<Frame> {
    const requestId = `cli-${++this.counter}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        reject(new Error(`no reply to ${frame.type} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(requestId, {
        resolve: (f) => {
          clearTimeout(timer);
          resolve(f);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.ws.send(encodeJson({ ...frame, requestId }));
    });
  }

  close(): Promise<{ code: number; reason: string }> {
    this.ws.close(1000);
    return this.closed;
  }
}
