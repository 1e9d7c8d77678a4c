// The fallback transports (docs/protocol.md, "Fallback transports"; docs/sdk-ts.md, "Fallback transports"): the
// server's frames arrive as an event stream, the client's go up as POSTs. Written for size: the main browser bundle
// carries them.
import type { WebSocketLike } from "./types.js";

/** What the fallback sockets take from their environment; what is left out is taken from the globals. */
export interface FallbackEnv {
  /** The EventSource constructor {@link SseSocket} reads the stream with (the `eventsource` package in Node). */
  EventSource?: typeof EventSource | undefined;
  /** The fetch that trades the token for a ticket, posts the client's frames and reads {@link StreamSocket}'s stream. */
  fetch?: typeof fetch | undefined;
}

/**
 * What the two fallback sockets share: the URL and token from the WebSocket arguments, the stream's events, and the
 * client's frames, posted to `P/send` one request at a time.
 */
class HttpSocket implements WebSocketLike {
  /** 0 until the stream's `session` event, 1 while it is open, 3 once closed. */
  readyState = 0;
  /** Not set: the fallback carries JSON frames only. */
  declare readonly protocol: string;
  /** Ignored: frames arrive as text. */
  declare binaryType: string;
  /** Called at the stream's `session` event. */
  declare onopen: WebSocketLike["onopen"];
  /** Called with every frame (the data of an unnamed event). */
  declare onmessage: WebSocketLike["onmessage"];
  /** Called once: with the code and reason of the stream's `close` event, 1006 when it ended or failed without one. */
  declare onclose: WebSocketLike["onclose"];
  /** Called before the close when a request failed; a refusal's message is "Unexpected server response: <status>". */
  declare onerror: WebSocketLike["onerror"];
  /** fetch of a path under P, with the abort signal. */
  #f: (path: string, init?: RequestInit) => Promise<Response>;
  /** The WebSocket path P as an http(s) URL. */
  #p: string;
  /** The query of the URL (`protocol=1.1`). */
  #q: string;
  #t: string | undefined;
  #a = new AbortController();
  #es: EventSource | undefined;
  #session = "";
  #out: string[] = [];
  #busy = false;

  /** Connects at once, as a WebSocket does: `url` is the ws(s) URL, `protocols` holds `bearer.<token>`. */
  constructor(url: string, protocols: string | string[] = [], env: FallbackEnv = globalThis) {
    const u = new URL(url.replace(/^ws/, "http"));
    const f = env.fetch!;
    this.#p = u.origin + u.pathname.replace(/\/$/, "");
    this.#f = (path, init) => f(this.#p + path, { ...init, signal: this.#a.signal });
    this.#q = u.search.slice(1);
    this.#t = [protocols].flat().find((s) => s.startsWith("bearer."))?.slice(7);
    this.#run(env).catch((err: unknown) => {
      this.onerror?.(err);
      this.#end(1006);
    });
  }

  async #run(env: FallbackEnv): Promise<void> {
    const headers = { authorization: "Bearer " + this.#t };
    if (this instanceof SseSocket) {
      const { ticket } = (await (await this.#ok(this.#f("/ticket", { method: "POST", headers }))).json()) as { ticket: string };
      if (this.readyState > 2) return;
      const es = (this.#es = new env.EventSource!(`${this.#p}/sse?${this.#q}&ticket=${encodeURIComponent(ticket)}`));
      for (const type of ["", "session", "ping", "close"]) es.addEventListener(type || "message", (e) => this.#event(type, (e as unknown as { data: string }).data));
      // EventSource would reconnect by itself: the client does that, and resubscribes with its positions.
      es.onerror = () => this.#end(1006);
      return;
    }
    const reader = (await this.#ok(this.#f("/sse?" + this.#q, { headers }))).body!.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let type = "";
    let data: string | undefined;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      // A CR at the end may be half a CRLF: it waits for the next chunk.
      const lines = (buffer += decoder.decode(value, { stream: true })).split(/\r\n|\r(?!$)|\n/);
      buffer = lines.pop()!;
      for (const line of lines) {
        // "field: value", "field:value" or "field"; a comment (": hb") has no field. `id` and `retry` serve
        // EventSource's own reconnects, which the client does itself.
        const [, field, value] = /^([^:]*):? ?(.*)/.exec(line)!;
        if (!line) {
          if (data != null) this.#event(type, data);
          type = "";
          data = undefined;
        } else if (field == "data") data = data == null ? value! : data + "\n" + value;
        else if (field == "event") type = value!;
      }
    }
    this.#end(1006);
  }

  /** Resolves with the response, or rejects with the error a refused WebSocket upgrade gives. */
  async #ok(response: Promise<Response>): Promise<Response> {
    const r = await response;
    if (!r.ok) throw Error("Unexpected server response: " + r.status);
    return r;
  }

  /** One event of the stream; `type` "" for a frame. */
  #event(type: string, data: string): void {
    if (this.readyState > 1) return;
    if (!type) this.onmessage?.({ data });
    else if (type == "session") {
      this.#session = (JSON.parse(data) as { session: string }).session;
      this.readyState = 1;
      this.onopen?.({});
    } else if (type == "ping") this.send('{"type":"pong"}');
    else if (type == "close") {
      const c = JSON.parse(data) as { code: number; reason: string };
      this.#end(c.code, c.reason);
    }
  }

  /** Closes once: aborts the stream and the posts, and reports `code`. */
  #end(code: number, reason = ""): void {
    if (this.readyState > 2) return;
    this.readyState = 3;
    this.#a.abort();
    this.#es?.close();
    // Later, as a WebSocket's close event: close() returns first.
    queueMicrotask(() => this.onclose?.({ code, reason }));
  }

  /** Queues a frame; the frames queued go up in one POST (NDJSON) once the previous one was answered. */
  send(data: string | Uint8Array): void {
    if (this.readyState != 1) return;
    this.#out.push(data as string);
    void this.#flush();
  }

  async #flush(): Promise<void> {
    if (this.#busy || !this.#out.length) return;
    this.#busy = true;
    const body = this.#out.splice(0).join("\n");
    const r = await this.#f("/send", { method: "POST", headers: { "x-arqon-session": this.#session, "content-type": "application/x-ndjson" }, body }).catch(() => undefined);
    // A failed post, 404 ARQ_SESSION_UNKNOWN or any other refusal: the session is gone, the client reconnects.
    if (!r?.ok) return this.#end(1006);
    this.#busy = false;
    void this.#flush();
  }

  /** Ends the stream (the server ends the session when it sees the request gone) and reports `code`. */
  close(code = 1000, reason = ""): void {
    this.#end(code, reason);
  }
}

/**
 * The "sse" transport, as a WebSocket: trades the token for a ticket (`POST P/ticket`), then reads `P/sse?ticket=` with
 * `EventSource`, closed at its first error.
 */
export class SseSocket extends HttpSocket {}

/**
 * The "http-stream" transport, as a WebSocket: reads `P/sse` with fetch (`Authorization: Bearer`) and parses the event
 * stream itself, for environments without `EventSource`.
 */
export class StreamSocket extends HttpSocket {}
