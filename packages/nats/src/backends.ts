import type { Bus, ControlPlane, HistoryStore, KeyValueStore, PresenceStore, RoomStateStore } from "@arqon/core";
import { NatsBus, NatsControlPlane, type NatsBusOptions } from "./bus.js";
import { JetStreamHistoryStore, type JetStreamHistoryOptions } from "./history.js";
import { NatsKvKeyValueStore } from "./kv.js";
import { NatsLink, type NatsConnectOptions, type NatsStatus } from "./link.js";
import { NatsKvPresenceStore, type NatsKvPresenceOptions } from "./presence.js";
import { NatsKvRoomStateStore, type NatsKvRoomStateOptions } from "./state.js";

/**
 * Options of {@link connectNatsBackends}: how to reach NATS, plus options per backend (their `link` and `replicas`
 * are filled in).
 */
export interface NatsBackendsOptions extends NatsConnectOptions {
  /** JetStream replicas of the streams and buckets this node creates (3 on a 3-node NATS cluster). @default 1 */
  replicas?: number;
  /** Options of the NatsBus: subject prefix, reorder window, error reporters. */
  bus?: Omit<NatsBusOptions, "link">;
  /** Options of the JetStreamHistoryStore: stream, retention, dedupe window, read limit. */
  history?: Omit<JetStreamHistoryOptions, "link" | "replicas">;
  /** Options of the NatsKvPresenceStore: bucket, lease and timers, node id. */
  presence?: Omit<NatsKvPresenceOptions, "link" | "replicas">;
  /** Options of the NatsKvRoomStateStore: bucket, kept log length. */
  state?: Omit<NatsKvRoomStateOptions, "link" | "replicas">;
  /** Options of the NatsKvKeyValueStore. */
  kv?: {
    /** The KV bucket's name. @default "ARQON_KV" */
    bucket?: string;
  };
}

/** Every backend a gateway node needs, on one NATS connection. */
export interface NatsBackends {
  /** The NATS connection every backend shares (closed by `close()`). */
  link: NatsLink;
  /** Room traffic between nodes: a NatsBus. */
  bus: Bus;
  /** Node-wide broadcasts: a NatsControlPlane. */
  controlPlane: ControlPlane;
  /** Room history on JetStream: a JetStreamHistoryStore. */
  history: HistoryStore;
  /** Room members on NATS KV: a NatsKvPresenceStore. */
  presence: PresenceStore;
  /** Room state on NATS KV: a NatsKvRoomStateStore. */
  state: RoomStateStore;
  /** The server's own records and op.store data on NATS KV: a NatsKvKeyValueStore. */
  kv: KeyValueStore;
  /** "reconnecting" while NATS is unreachable: operations then reject with ARQ_BACKEND_UNAVAILABLE. */
  status(): NatsStatus;
  /** Calls `listener` on every status change; returns a function that removes it. */
  onStatus(listener: (status: NatsStatus) => void): () => void;
  /** Closes the backends, then the connection. */
  close(): Promise<void>;
}

/**
 * Connects to NATS and opens every backend (creating streams and buckets that do not exist yet):
 *
 * ```ts
 * const backends = await connectNatsBackends({ servers: "nats://127.0.0.1:4222", name: "arqon-a" });
 * const server = createArqonServer({ ...options, ...backends });
 * ```
 *
 * Rejects with `BackendUnavailableError` (ARQ_BACKEND_UNAVAILABLE) when NATS cannot be reached or has no JetStream.
 * Once connected, the connection reconnects by itself forever.
 */
export async function connectNatsBackends(options: NatsBackendsOptions = {}): Promise<NatsBackends> {
  const link = await NatsLink.connect(options);
  const replicas = options.replicas ?? 1;
  const opened: { close(): Promise<void> }[] = [];
  try {
    const bus = new NatsBus({ ...options.bus, link });
    opened.push(bus);
    const controlPlane = await NatsControlPlane.create({ link });
    opened.push(controlPlane);
    const history = await JetStreamHistoryStore.create({ ...options.history, link, replicas });
    opened.push(history);
    const presence = await NatsKvPresenceStore.create({ ...options.presence, link, replicas });
    opened.push(presence);
    const state = await NatsKvRoomStateStore.create({ ...options.state, link, replicas });
    opened.push(state);
    const kv = await NatsKvKeyValueStore.create({ ...options.kv, link, replicas });
    opened.push(kv);
    return {
      link,
      bus,
      controlPlane,
      history,
      presence,
      state,
      kv,
      status: () => link.status,
      onStatus: (listener) => link.onStatus(listener),
      async close() {
        for (const backend of opened.reverse()) await backend.close();
        await link.close();
      },
    };
  } catch (error) {
    for (const backend of opened.reverse()) await backend.close().catch(() => undefined);
    await link.close();
    throw error;
  }
}
