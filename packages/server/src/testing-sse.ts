import { request, type IncomingMessage } from "node:http";
import { decodeFrame, type Frame } from "@arqon/core";

/** One event of an event stream, as an EventSource would dispatch it (plus comments, which it does not). */
export interface StreamEvent {
  /** The event's type: "message" for frames, or `session`, `ping`, `close`. */
  event: string;
  /** Its data lines, joined with "\n". */
  data: string;
  /** The stream's last event id after this event. */
  lastId: string;
}

/** What `SseTestClient.send` got back. */
export interface SendResult {
  /** The HTTP status (204 when the frames were taken). */
  status: number;
  /** The body (a JSON error when refused). */
  body: string;
}

/**
 * A fallback-transport client for tests (docs/protocol.md, "Fallback transports"): a `GET <path>/sse` read over
 * node:http and parsed line by line as the SSE spec says, its frames decoded, and `POST <path>/send` to its session.
 * It does not reconnect. `SseTestClient.open(gw.httpUrl, "/ws/sse", { authorization: "Bearer …" })`.
 */
export class SseTestClient {
  /** Every event dispatched so far (comments aside), in order. */
  readonly events: StreamEvent[] = [];
  /** The comment lines (`: hb`), without the colon. */
  readonly comments: string[] = [];
  /** The frames of the unnamed events, decoded. */
  readonly frames: Frame[] = [];
  /** The response's status (0 until it arrived). */
  status = 0;
  /** The response's headers. */
  headers: IncomingMessage["headers"] = {};
  /** A refused stream's body (its JSON error). */
  body = "";
  /** The session credential of the `session` event (`<clientId>.<key>`). */
  session = "";
  /** The path the `session` event names for sends. */
  sendPath = "";
  /** The stream's last event id (its position). */
  lastId = "";
  /** Whether the response ended. */
  ended = false;
  /** Resolves when the response ends. */
  readonly done: Promise<void>;
  private res: IncomingMessage | undefined;
  private waiters: Array<() => void> = [];
  private buffer = "";
  private eventType = "";
  private data: string[] = [];

  private constructor(
    /** The server's base URL (`http://127.0.0.1:<port>`). */
    readonly base: string,
    path: string,
    headers: Record<string, string>,
  ) {
    let finish!: () => void;
    this.done = new Promise<void>((resolve) => (finish = resolve));
    const url = new URL(path, base);
    const req = request({ host: url.hostname, port: url.port, path: url.pathname + url.search, method: "GET", headers: { accept: "text/event-stream", ...headers } });
    req.on("response", (res) => {
      this.res = res;
      this.status = res.statusCode ?? 0;
      this.headers = res.headers;
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        if (this.status !== 200) this.body += chunk;
        else this.feed(chunk);
        this.wake();
      });
      const end = (): void => {
        this.ended = true;
        this.wake();
        finish();
      };
      res.on("end", end);
      res.on("close", end);
      res.on("error", end);
      this.wake();
    });
    req.on("error", () => {
      this.ended = true;
      this.wake();
      finish();
    });
    req.end();
  }

  /** Opens a stream; resolves once the response head arrived (check `status`). */
  static async open(base: string, path: string, headers: Record<string, string> = {}): Promise<SseTestClient> {
    const client = new SseTestClient(base, path, headers);
    await client.until(() => client.status !== 0 || client.ended);
    if (client.status !== 200) await client.done;
    return client;
  }

  /** The error code of a refused stream's JSON body. */
  get errorCode(): string | undefined {
    try {
      return (JSON.parse(this.body) as { error?: { code?: string } }).error?.code;
    } catch {
      return undefined;
    }
  }

  private feed(chunk: string): void {
    this.buffer += chunk;
    for (;;) {
      const nl = this.buffer.search(/\r\n|\r|\n/);
      if (nl < 0) return;
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + (this.buffer.startsWith("\r\n", nl) ? 2 : 1));
      this.line(line);
    }
  }

  private line(line: string): void {
    if (line === "") {
      if (this.data.length === 0) {
        this.eventType = "";
        return;
      }
      const ev: StreamEvent = { event: this.eventType || "message", data: this.data.join("\n"), lastId: this.lastId };
      this.events.push(ev);
      this.eventType = "";
      this.data = [];
      if (ev.event === "message") {
        const decoded = decodeFrame(ev.data, { from: "any" });
        if (!decoded.ok) throw new Error(`undecodable frame on the stream: ${ev.data}`);
        this.frames.push(decoded.frame);
      }
      if (ev.event === "session") {
        const s = JSON.parse(ev.data) as { session: string; send: string };
        this.session = s.session;
        this.sendPath = s.send;
      }
      return;
    }
    if (line.startsWith(":")) {
      this.comments.push(line.slice(1).trim());
      return;
    }
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.data.push(value);
    else if (field === "event") this.eventType = value;
    else if (field === "id") this.lastId = value;
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Waits until `check` holds (re-checked on every chunk), or fails after `timeoutMs`. */
  async until(check: () => boolean, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("timed out waiting on the event stream");
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 100));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The first frame (after the `from`-th) that matches. */
  async frame(match: (f: Frame) => boolean, from = 0, timeoutMs = 5000): Promise<Frame> {
    let found: Frame | undefined;
    await this.until(() => (found = this.frames.slice(from).find(match)) !== undefined, timeoutMs);
    return found!;
  }

  /** POSTs frames to the session (`ndjson` when several); resolves with the HTTP status and body. */
  async send(frames: Array<Record<string, unknown>> | string, options: { session?: string; contentType?: string } = {}): Promise<SendResult> {
    const body = typeof frames === "string" ? frames : frames.map((f) => JSON.stringify(f)).join("\n");
    const contentType = options.contentType ?? (typeof frames !== "string" && frames.length > 1 ? "application/x-ndjson" : "application/json");
    const res = await fetch(new URL(this.sendPath || "/ws/send", this.base), {
      method: "POST",
      headers: { "content-type": contentType, "x-arqon-session": options.session ?? this.session },
      body,
    });
    return { status: res.status, body: await res.text() };
  }

  /** Sends one frame with a requestId and waits for the frame that answers it. */
  async request(frame: Record<string, unknown>): Promise<Frame> {
    const requestId = `r${Math.random().toString(36).slice(2)}`;
    const from = this.frames.length;
    const sent = await this.send([{ ...frame, requestId }]);
    if (sent.status !== 204) throw new Error(`send answered ${sent.status}: ${sent.body}`);
    return this.frame((f) => f.requestId === requestId, from);
  }

  /** Ends the stream from the client's side. */
  close(): void {
    this.res?.destroy();
  }
}
