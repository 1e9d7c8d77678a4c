/**
 * One adapter per system under test. The server half runs alone in a forked server process; the client half runs in
 * the load-generating client processes. Adapters import their libraries lazily so a client process never loads a
 * server and vice versa.
 */

export interface ServerStartOptions {
  /** HS256 secret shared with the clients (systems without auth ignore it). */
  secret: string;
}

export interface RunningServer {
  port: number;
  close(): Promise<void>;
  /**
   * A server that runs in a process of its own, not in the bench's server process (Centrifugo: a Go binary that
   * process starts): its PID. The server process then reports that process's CPU time (from /proc) instead of its own.
   */
  pid?: number;
  /**
   * A server made of several processes (`arqon serve --workers`, with its nats-server): all of them, `pid` among them.
   * Their CPU time and system calls are summed; without it, `pid`'s alone are counted.
   */
  pids?(): number[];
  /**
   * The memory of such a server after a collection (its own GC, forced if it can be): RSS and heap in use, in bytes
   * (NaN where it cannot tell). Without it the server process reports its own memory after three full GCs.
   */
  memory?(): Promise<{ rss: number; heapUsed: number }>;
}

/** What a client connection reports back: the send timestamp (shared clock, ms) of each bench message received. */
export interface ClientHooks {
  onTs(ts: number): void;
}

export interface ClientConn {
  /** Joins a room; resolves once the server confirmed it. */
  subscribe(room: string): Promise<void>;
  /** Publishes one payload (JSON text) to a room; fire and forget. */
  publish(room: string, payloadJson: string): void;
  close(): void;
  /**
   * Lean mode: stop reading through the WebSocket library and read this connection's frames with the bench's bare
   * frame reader (src/lean.ts) — the subscriber then costs as little as this runtime allows, so a step measures the
   * server's own ceiling. Systems without it (Socket.IO: see `socketio-raw`) leave it out.
   */
  lean?(hooks: ClientHooks): void;
}

export interface ClientFactory {
  /** Work done before a timed section (e.g. minting the tokens of connections `from` .. `from + count - 1`). */
  prepare(from: number, count: number): Promise<void>;
  /** Opens connection number `index`; resolves when it is ready to subscribe (for ArqonBus: `welcome` received). */
  connect(index: number, hooks: ClientHooks): Promise<ClientConn>;
}

export interface ClientOptions {
  port: number;
  secret: string;
}

export interface SystemAdapter {
  /** Short id used on the command line and in results: "arqon-json", "socketio", "floor". */
  readonly id: string;
  readonly label: string;
  /** What the subscribers are, for the docs and the JSON results. */
  readonly clientNote: string;
  startServer(opts: ServerStartOptions): Promise<RunningServer>;
  createClientFactory(opts: ClientOptions): Promise<ClientFactory>;
  /**
   * Makes the system runnable before any workload, in the orchestrator (e.g. builds an external binary, printing
   * progress with `log`). Resolves to undefined when the system can run, or to the reason it cannot: the run then
   * goes on without it and reports it as not available. Must not throw.
   */
  prepare?(log: (msg: string) => void): Promise<string | undefined>;
}
