/**
 * The console's WebSocket side: one connection to the bus as a normal client, with a short-lived token the server
 * API mints for it (POST /api/v1/tenants/:t/console-token), never the operator key. It follows rooms (the live tail)
 * and runs admin commands (op.webhook.list, ...). JSON face of protocol 1.0 (docs/protocol.md).
 */
import { api, tenantPath, type Session } from "./api.js";

/** A frame as the JSON face carries it. */
export type Frame = Record<string, unknown> & { type: string };

type Pending = { resolve(frame: Frame): void; reject(err: Error): void; timer: ReturnType<typeof setTimeout> };

/** An error frame (or a command's error response) as an exception. */
export class BusError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** How long a request waits for its answer. */
const REQUEST_TIMEOUT_MS = 10_000;
/** A new token is sent (an `auth` frame) this long before the current one expires. */
const REFRESH_BEFORE_MS = 60_000;
/** Reconnects after an unexpected close, while rooms are followed: at most this many in a row, 1 s, 2 s, 4 s, ... apart. */
const MAX_RECONNECTS = 5;
/** Close codes after which reconnecting cannot help (revoked, tenant disabled, kicked). */
const FINAL_CLOSES = new Set([4500, 4503, 4504]);

export class BusConnection {
  private ws: WebSocket | undefined;
  private opening: Promise<void> | undefined;
  private seq = 0;
  private readonly pending = new Map<string, Pending>();
  private readonly listeners = new Map<string, Set<(frame: Frame) => void>>();
  private closed = false;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private reconnects = 0;
  /** Called with every state change ("connecting", "open", "closed 4503: ..."). */
  onStatus: (status: string) => void = () => undefined;

  constructor(
    private readonly session: Session,
    private readonly tenant: string,
    private readonly access: "read" | "admin",
    private readonly wsPath: string,
  ) {}

  private url(): string {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}${this.wsPath}`;
  }

  /** Opens the connection (once; again after it closed). */
  open(): Promise<void> {
    if (this.closed) return Promise.reject(new BusError("CLOSED", "connection closed"));
    if (this.ws && this.ws.readyState === WebSocket.OPEN) return Promise.resolve();
    this.opening ??= this.connect().finally(() => (this.opening = undefined));
    return this.opening;
  }

  private async connect(): Promise<void> {
    this.onStatus("connecting");
    const { token, expiresAt } = await this.mint();
    await new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(this.url(), ["arqon.v1.json", `bearer.${token}`]);
      this.ws = ws;
      let welcomed = false;
      ws.onmessage = (ev) => {
        if (typeof ev.data !== "string") return;
        let frame: Frame;
        try {
          frame = JSON.parse(ev.data) as Frame;
        } catch {
          return;
        }
        if (frame.type === "welcome" && !welcomed) {
          welcomed = true;
          this.reconnects = 0;
          this.scheduleRefresh(expiresAt);
          this.onStatus("open");
          resolve();
          return;
        }
        this.dispatch(frame);
      };
      ws.onclose = (ev) => {
        this.ws = undefined;
        for (const [id, p] of this.pending) {
          clearTimeout(p.timer);
          p.reject(new BusError("CLOSED", `connection closed (${ev.code})`));
          this.pending.delete(id);
        }
        if (this.refreshTimer) clearTimeout(this.refreshTimer);
        this.onStatus(`closed ${ev.code}${ev.reason ? `: ${ev.reason}` : ""}`);
        if (!welcomed) reject(new BusError("CLOSED", `connection refused (${ev.code})`));
        else this.reconnectLater(ev.code);
      };
    });
  }

  private mint(): Promise<{ token: string; expiresAt: string }> {
    return api<{ token: string; expiresAt: string }>(this.session.credential, "POST", tenantPath(this.tenant, "console-token"), { access: this.access });
  }

  /** Sends a fresh token (`auth`) shortly before this one expires, so the connection outlives its first token. */
  private scheduleRefresh(expiresAt: string): void {
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    const wait = Math.max(5_000, Date.parse(expiresAt) - Date.now() - REFRESH_BEFORE_MS);
    this.refreshTimer = setTimeout(() => {
      this.mint().then(
        (next) => {
          this.request({ type: "auth", token: next.token }).then(
            () => this.scheduleRefresh(next.expiresAt),
            () => undefined,
          );
        },
        () => undefined,
      );
    }, wait);
  }

  /** After an unexpected close, reconnects (bounded) and follows the same rooms again. */
  private reconnectLater(code: number): void {
    if (this.closed || this.listeners.size === 0 || FINAL_CLOSES.has(code) || this.reconnects >= MAX_RECONNECTS) return;
    const delay = 1000 * 2 ** this.reconnects++;
    setTimeout(() => {
      if (this.closed) return;
      this.open().then(
        () => {
          for (const room of this.listeners.keys()) void this.request({ type: "subscribe", room }).catch(() => undefined);
        },
        () => this.reconnectLater(code),
      );
    }, delay);
  }

  private dispatch(frame: Frame): void {
    const id = typeof frame.requestId === "string" ? frame.requestId : undefined;
    const waiting = id ? this.pending.get(id) : undefined;
    if (waiting && id) {
      this.pending.delete(id);
      clearTimeout(waiting.timer);
      const error = frame.error as { code?: string; message?: string } | undefined;
      if (frame.type === "error" || (frame.type === "response" && frame.status === "error")) {
        waiting.reject(new BusError(error?.code ?? "ERROR", error?.message ?? "refused"));
      } else waiting.resolve(frame);
      return;
    }
    const room = typeof frame.room === "string" ? frame.room : undefined;
    if (room) for (const fn of this.listeners.get(room) ?? []) fn(frame);
  }

  /** Sends a request frame and resolves its answer (rejects on an error frame). */
  async request(frame: Frame): Promise<Frame> {
    await this.open();
    const ws = this.ws;
    if (!ws) throw new BusError("CLOSED", "not connected");
    const requestId = `c${++this.seq}`;
    return new Promise<Frame>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        reject(new BusError("TIMEOUT", `no answer to ${frame.type} within ${REQUEST_TIMEOUT_MS / 1000} s`));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(requestId, { resolve, reject, timer });
      ws.send(JSON.stringify({ ...frame, requestId }));
    });
  }

  /** Runs a command (`op.webhook.list`, ...) and resolves its payload. */
  async command<T = Record<string, unknown>>(command: string, args: Record<string, unknown> = {}): Promise<T> {
    const reply = await this.request({ type: "command", command, args });
    return (reply.payload ?? {}) as T;
  }

  /** Follows a room: `onFrame` gets its messages (and presence events); resolves a function that stops. */
  async follow(room: string, onFrame: (frame: Frame) => void): Promise<() => void> {
    let set = this.listeners.get(room);
    if (!set) this.listeners.set(room, (set = new Set()));
    set.add(onFrame);
    try {
      await this.request({ type: "subscribe", room });
    } catch (err) {
      set.delete(onFrame);
      throw err;
    }
    return () => {
      set.delete(onFrame);
      if (set.size === 0) {
        this.listeners.delete(room);
        if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: "unsubscribe", room }));
      }
    };
  }

  /** Closes for good. */
  close(): void {
    this.closed = true;
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.ws?.close(1000, "console closed");
  }
}
