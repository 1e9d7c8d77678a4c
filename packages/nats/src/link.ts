import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, JetStreamApiError, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { ArqonError, BackendUnavailableError, PayloadTooLargeError } from "@arqon/core";

/**
 * Whether NATS is reachable: "connected"; "reconnecting" while the connection is down (operations then fail fast
 * with ARQ_BACKEND_UNAVAILABLE); "closed" for good, after `close()` or when the connection ends.
 */
export type NatsStatus = "connected" | "reconnecting" | "closed";

/** How `NatsLink.connect` (and `connectNatsBackends`) reach NATS. */
export interface NatsConnectOptions {
  /** One URL or several (a NATS cluster's seeds). @default "nats://127.0.0.1:4222" */
  servers?: string | string[];
  /** Connection name shown by the NATS server's monitoring (`arqon-<host>-<pid>` is a good choice). */
  name?: string;
  /** Delay between reconnect attempts. Attempts never stop. @default 250 */
  reconnectTimeWaitMs?: number;
  /** Timeout of each JetStream/KV request. @default 5000 */
  requestTimeoutMs?: number;
  /** Extra nats.js connection options (user, pass, token, tls, ...). */
  connectionOptions?: Record<string, unknown>;
}

/** JetStream API error codes the backends act on. */
export const JS_WRONG_LAST_SEQUENCE = 10071;
export const JS_STREAM_NOT_FOUND = 10059;

export function isStreamNotFound(error: unknown): boolean {
  return error instanceof JetStreamApiError && error.code === JS_STREAM_NOT_FOUND;
}

export function isWrongLastSequence(error: unknown): boolean {
  return error instanceof JetStreamApiError && error.code === JS_WRONG_LAST_SEQUENCE;
}

/**
 * One NATS connection and its JetStream handles, shared by every backend of a node. Knows whether NATS is reachable:
 * while it is not, `guard()` throws `BackendUnavailableError`, so callers fail fast instead of waiting for a timeout.
 * The connection reconnects by itself, forever, until `close()`.
 */
export class NatsLink {
  /** The nats.js connection. */
  readonly nc: NatsConnection;
  /** The JetStream client on `nc` (publishes with acks), with the link's request timeout. */
  readonly js: JetStreamClient;
  /** The JetStream manager on `nc` (streams, direct gets, purges), with the link's request timeout. */
  readonly jsm: JetStreamManager;
  /** The KV bucket manager on `js`. */
  readonly kvm: Kvm;
  #status: NatsStatus = "connected";
  readonly #listeners = new Set<(status: NatsStatus) => void>();
  readonly #owned: boolean;

  private constructor(nc: NatsConnection, jsm: JetStreamManager, owned: boolean, requestTimeoutMs: number) {
    this.nc = nc;
    this.jsm = jsm;
    this.js = jetstream(nc, { timeout: requestTimeoutMs });
    this.kvm = new Kvm(this.js);
    this.#owned = owned;
    void this.#watchStatus();
    void nc.closed().then(() => this.#set("closed"));
  }

  /** Connects to NATS (rejects with `BackendUnavailableError` when no server answers). */
  static async connect(options: NatsConnectOptions = {}): Promise<NatsLink> {
    const requestTimeoutMs = options.requestTimeoutMs ?? 5000;
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers: options.servers ?? "nats://127.0.0.1:4222",
        ...(options.name === undefined ? {} : { name: options.name }),
        maxReconnectAttempts: -1,
        reconnectTimeWait: options.reconnectTimeWaitMs ?? 250,
        reconnectJitter: 50,
        pingInterval: 10_000,
        timeout: requestTimeoutMs,
        ...options.connectionOptions,
      });
    } catch (error) {
      throw new BackendUnavailableError(`cannot connect to NATS at ${String(options.servers ?? "nats://127.0.0.1:4222")}`, {
        cause: error,
      });
    }
    try {
      const jsm = await jetstreamManager(nc, { timeout: requestTimeoutMs });
      return new NatsLink(nc, jsm, true, requestTimeoutMs);
    } catch (error) {
      await nc.close();
      throw new BackendUnavailableError("NATS answered but JetStream is not enabled (start nats-server with -js)", { cause: error });
    }
  }

  /** Wraps a connection the caller owns (`close()` then leaves it open). */
  static async wrap(nc: NatsConnection, requestTimeoutMs = 5000): Promise<NatsLink> {
    const jsm = await jetstreamManager(nc, { timeout: requestTimeoutMs });
    return new NatsLink(nc, jsm, false, requestTimeoutMs);
  }

  /** "connected", "reconnecting" while NATS is unreachable, or "closed" (final). */
  get status(): NatsStatus {
    return this.#status;
  }

  /** Calls `listener` on every status change; returns a function that removes it. */
  onStatus(listener: (status: NatsStatus) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #set(status: NatsStatus): void {
    if (this.#status === status || this.#status === "closed") return;
    this.#status = status;
    for (const listener of this.#listeners) listener(status);
  }

  async #watchStatus(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === "disconnect" || s.type === "reconnecting" || s.type === "staleConnection") this.#set("reconnecting");
      else if (s.type === "reconnect") this.#set("connected");
      else if (s.type === "close") this.#set("closed");
    }
  }

  /** Throws `BackendUnavailableError` unless the connection is up. */
  guard(what: string): void {
    if (this.#status !== "connected") {
      throw new BackendUnavailableError(
        this.#status === "closed" ? `${what}: the NATS connection is closed` : `${what}: NATS is unreachable (reconnecting)`,
      );
    }
  }

  /**
   * Throws `PayloadTooLargeError` (ARQ_PAYLOAD_TOO_LARGE) when `bytes` (plus `overhead` for headers) exceeds the NATS
   * server's `max_payload` (1 MiB by default), instead of letting NATS refuse it as a connection-level error.
   */
  checkSize(bytes: number, overhead = 512): void {
    const max = this.nc.info?.max_payload;
    if (max !== undefined && max > 0 && bytes + overhead > max) throw new PayloadTooLargeError(max - overhead);
  }

  /**
   * Maps a failed NATS call to what callers see: ArqonErrors pass through; everything else (timeouts, no responders,
   * disconnects, JetStream API errors the caller did not handle) becomes `BackendUnavailableError` with the cause.
   */
  fail(what: string, error: unknown): ArqonError {
    if (error instanceof ArqonError) return error;
    const message = error instanceof Error ? error.message : String(error);
    return new BackendUnavailableError(`${what}: ${message}`, { cause: error });
  }

  /**
   * Closes the connection if `connect()` opened it (the status becomes "closed"); a connection given to `wrap()`
   * is left open and untouched.
   */
  async close(): Promise<void> {
    if (!this.#owned) return;
    if (!this.nc.isClosed()) await this.nc.close();
    this.#set("closed");
  }
}
