import { createHash, randomBytes } from "node:crypto";
import { headers as natsHeaders, NoRespondersError, type Subscription } from "@nats-io/transport-node";
import type { StreamConfig } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import {
  ArqonError,
  BackendUnavailableError,
  decodeProto,
  encodeProto,
  ErrorCode,
  escapeToken,
  HEADER_TIMESTAMP,
  HEADER_TWIST_ID,
  type AppendOptions,
  type AppendResult,
  type Frame,
  type HistoryPage,
  type HistoryStats,
  type HistoryQuery,
  type HistoryStore,
  type Position,
  type RecoveryResult,
  type RetentionPolicy,
  type RoomKey,
} from "@arqon/core";
import { assertRoomKeyArgument } from "@arqon/core/internal";
import { isStreamNotFound, isWrongLastSequence, type NatsLink } from "./link.js";
import { scanSubject, type LogRecord } from "./subject-log.js";
import { kvToken, roomKvKey, roomSubject, SUBJECT_HISTORY_PREFIX } from "./subjects.js";

/** The JetStream stream {@link JetStreamHistoryStore} keeps room messages in unless `stream` names another. */
export const DEFAULT_HISTORY_STREAM = "ARQON_HISTORY";
/** The KV bucket holding each room's epoch unless `epochBucket` names another. */
export const DEFAULT_EPOCH_BUCKET = "ARQON_HISTORY_EPOCHS";
/** Header holding a stored message's room offset. */
export const HEADER_OFFSET = "Arqon-Offset";
/** Header holding the append time (ms since the Unix epoch, the appending node's clock): drives age retention. */
export const HEADER_APPENDED_AT = "Arqon-Appended-At";
/** Header holding the epoch a message was appended in: lets a node check its cached epoch against the stream. */
export const HEADER_EPOCH = "Arqon-Epoch";

const DEFAULT_MAX_MESSAGES = 1000;
const DEFAULT_MAX_AGE_MS = 86_400_000;
const DEFAULT_DEDUPE_WINDOW_MS = 120_000;
const DEFAULT_READ_LIMIT = 100;
const MAX_APPEND_ATTEMPTS = 200;
/** Rooms whose epoch and head a node caches; past this the caches start over (they are only shortcuts). */
const MAX_CACHED_ROOMS = 100_000;

/** Options of `JetStreamHistoryStore.create(options)`. */
export interface JetStreamHistoryOptions {
  /** The node's NATS connection. */
  link: NatsLink;
  /** The JetStream stream's name. @default "ARQON_HISTORY" */
  stream?: string;
  /** Messages of room `<tenant>.<room>` are stored on `<prefix>.<tenant>.<room>`. @default "arqon.hist" */
  subjectPrefix?: string;
  /** KV bucket holding each room's epoch. @default "ARQON_HISTORY_EPOCHS" */
  epochBucket?: string;
  /**
   * Retention for every room, or per room (e.g. by pattern); read each time it applies. A field left out means
   * 1000 messages, 24 hours, no byte bound.
   */
  retention?: RetentionPolicy | ((key: RoomKey) => RetentionPolicy);
  /**
   * Hard cap per room enforced by JetStream itself (`max_msgs_per_subject`), whatever the policy says; a policy above
   * it is bounded by it. Set when this call creates the stream.
   * @default 10000
   */
  streamMaxMessagesPerRoom?: number;
  /** JetStream's `duplicate_window`: how long an idempotency key is remembered (stream-wide). @default 120000 */
  dedupeWindowMs?: number;
  /** The page size of a `read` whose query has no `limit`. @default 100 */
  defaultReadLimit?: number;
  /** JetStream replicas when this call creates the stream and bucket. @default 1 */
  replicas?: number;
}

interface Head {
  seq: number;
  offset: number;
  /** Epoch the message at `seq` was appended in (absent for an empty room, or a message stored without it). */
  epoch?: string;
}

interface Policy {
  maxMessages: number;
  maxAgeMs: number;
  maxBytes: number;
}

interface Loaded {
  head: Head;
  epoch: string;
  /** Messages kept by the retention policy, ascending by offset, with their append time. */
  visible: { frame: Frame; time: number; seq: number }[];
}

function randomEpoch(): string {
  return randomBytes(8).toString("hex");
}

function messageTime(frame: Frame, fallback: number): number {
  const header = frame.headers?.[HEADER_TIMESTAMP];
  if (header !== undefined && header.trim() !== "") {
    const n = Number(header);
    if (Number.isFinite(n)) return n;
  }
  return frame.timestamp ?? fallback;
}

function isStreamGone(error: unknown): boolean {
  return isStreamNotFound(error) || error instanceof NoRespondersError || (error as { streamGone?: boolean }).streamGone === true;
}

/**
 * Room history on JetStream: one stream (`ARQON_HISTORY`, subjects `arqon.hist.>`), one subject per room.
 *
 * - Offsets: each stored message carries its room offset in a header. `append` reads the room's last message
 *   (offset n, stream sequence s) and publishes offset n+1 with `Nats-Expected-Last-Subject-Sequence: s`; if another
 *   node appended in between, JetStream refuses it and the append retries from the new last message. So offsets are
 *   gapless and unique per room across nodes; appends of one node to one room are queued, so they keep call order.
 * - Retention: a room's policy (count, age and payload bytes) is applied when reading; the room's last message is
 *   never trimmed (it carries the offset counter), older trimmed ones are purged lazily. JetStream's
 *   `max_msgs_per_subject` is a hard cap on top.
 * - Epochs: per room in the KV bucket `ARQON_HISTORY_EPOCHS`, together with the stream's creation time. A record
 *   written for another incarnation of the stream (the stream was lost and re-created) is replaced by a new epoch,
 *   and so is a record `deleteTenant` removed. Each message also carries its epoch in a header.
 * - Caches: a node remembers each room's epoch and head. They are shortcuts that correct themselves: an append
 *   from a cached head only lands if the room's last message is still that head (the publish expects its sequence),
 *   and a cached epoch is used only while the room's last message carries it (or predates the epoch header);
 *   otherwise, and for an empty room, the epoch is read again from the bucket. So after a `deleteTenant` on any
 *   node, no node appends under the old epoch or from the old head, nor answers with the old epoch.
 * - Idempotency: `Nats-Msg-Id` = hash of (room, epoch, key); a duplicate within the stream's `duplicate_window` is
 *   not stored again and `append` returns the original message. `dedupeWindowMs` per call is not supported (the
 *   window is the stream's); a duplicate whose original was already trimmed returns the given message with offset 0.
 * - Durability: `append` resolves after JetStream's ack (the message is in the stream); errors reject with
 *   ARQ_BACKEND_UNAVAILABLE, never a false ack.
 */
export class JetStreamHistoryStore implements HistoryStore {
  readonly #link: NatsLink;
  readonly #stream: string;
  readonly #prefix: string;
  readonly #epochBucket: string;
  readonly #options: JetStreamHistoryOptions;
  readonly #retention: JetStreamHistoryOptions["retention"];
  readonly #defaultReadLimit: number;
  #epochs!: KV;
  #streamCreated = "";
  /**
   * The stream allows direct gets (DIRECT.GET, answered by any replica). A replica may lag the leader, so they serve
   * only an append's first guess of the head (a stale guess costs one retry); positions and reads ask the leader.
   */
  #direct = false;
  /** With a single replica a direct get cannot lag: every head read may use it. */
  #directExact = false;
  readonly #epochCache = new Map<RoomKey, string>();
  readonly #heads = new Map<RoomKey, Head>();
  readonly #queues = new Map<RoomKey, Promise<unknown>>();
  readonly #purgedAt = new Map<RoomKey, number>();
  /** Set when the stream may have been re-created (advisory, reconnect): the next operation checks first. */
  #verify = false;
  #advisories?: Subscription;
  #offStatus?: () => void;
  #closed = false;

  private constructor(options: JetStreamHistoryOptions) {
    this.#link = options.link;
    this.#options = options;
    this.#stream = options.stream ?? DEFAULT_HISTORY_STREAM;
    this.#prefix = options.subjectPrefix ?? SUBJECT_HISTORY_PREFIX;
    this.#epochBucket = options.epochBucket ?? DEFAULT_EPOCH_BUCKET;
    this.#retention = options.retention;
    this.#defaultReadLimit = options.defaultReadLimit ?? DEFAULT_READ_LIMIT;
  }

  /** Opens the store, creating the stream and the epoch bucket when they do not exist. */
  static async create(options: JetStreamHistoryOptions): Promise<JetStreamHistoryStore> {
    const store = new JetStreamHistoryStore(options);
    try {
      await store.#ensure();
      store.#watchIncarnation();
    } catch (error) {
      throw options.link.fail("history store", error);
    }
    return store;
  }

  /** The stream's configuration as this store creates it. */
  streamConfig(): Partial<StreamConfig> & {
    /** The stream's name (the `stream` option). */
    name: string;
  } {
    const dedupe = this.#options.dedupeWindowMs ?? DEFAULT_DEDUPE_WINDOW_MS;
    return {
      name: this.#stream,
      subjects: [`${this.#prefix}.>`],
      max_msgs_per_subject: this.#options.streamMaxMessagesPerRoom ?? 10_000,
      duplicate_window: dedupe * 1_000_000,
      num_replicas: this.#options.replicas ?? 1,
      allow_direct: true,
    };
  }

  async #ensure(): Promise<void> {
    const jsm = this.#link.jsm;
    let info;
    try {
      info = await jsm.streams.info(this.#stream);
    } catch (error) {
      if (!isStreamNotFound(error)) throw error;
      info = await jsm.streams.add(this.streamConfig());
    }
    this.#direct = info.config.allow_direct === true;
    this.#directExact = this.#direct && (info.config.num_replicas ?? 1) <= 1;
    if (info.created !== this.#streamCreated) {
      this.#streamCreated = info.created;
      this.#epochCache.clear();
      this.#heads.clear();
    }
    this.#epochs = await this.#link.kvm.create(this.#epochBucket, { history: 1, replicas: this.#options.replicas ?? 1 });
  }

  /**
   * Epochs and cached heads belong to one incarnation of the stream. JetStream announces a stream's deletion and
   * creation (advisories), and a server that lost its store comes back through a reconnect: either way the next
   * operation re-reads the stream's creation time before trusting its caches.
   */
  #watchIncarnation(): void {
    const nc = this.#link.nc;
    this.#advisories = nc.subscribe(`$JS.EVENT.ADVISORY.STREAM.*.${this.#stream}`, {
      callback: () => {
        this.#verify = true;
      },
    });
    this.#offStatus = this.#link.onStatus((status) => {
      if (status === "connected") this.#verify = true;
    });
  }

  #policy(key: RoomKey): Policy {
    const policy = typeof this.#retention === "function" ? this.#retention(key) : this.#retention;
    return {
      maxMessages: Math.max(0, policy?.maxMessages ?? DEFAULT_MAX_MESSAGES),
      maxAgeMs: Math.max(0, policy?.maxAgeMs ?? DEFAULT_MAX_AGE_MS),
      maxBytes: Math.max(0, policy?.maxBytes ?? 0),
    };
  }

  #guard(): void {
    if (this.#closed) throw new BackendUnavailableError("history store is closed");
    this.#link.guard("history");
  }

  /** Runs `op`; if the stream turned out to be gone (lost, deleted), re-creates it once and runs `op` again. */
  async #withStream<T>(what: string, op: () => Promise<T>): Promise<T> {
    try {
      if (this.#verify) {
        this.#verify = false;
        await this.#ensure();
      }
      return await op();
    } catch (error) {
      if (!isStreamGone(error)) throw this.#link.fail(what, error);
    }
    try {
      await this.#ensure();
      return await op();
    } catch (error) {
      throw this.#link.fail(what, error);
    }
  }

  async #epoch(key: RoomKey): Promise<string> {
    const cached = this.#epochCache.get(key);
    if (cached !== undefined) return cached;
    const kvKey = roomKvKey(key);
    for (let attempt = 0; attempt < 20; attempt++) {
      const entry = await this.#epochs.get(kvKey);
      if (entry !== null && entry.operation === "PUT") {
        const record = JSON.parse(entry.string()) as { epoch?: string; stream?: string };
        if (record.stream === this.#streamCreated && typeof record.epoch === "string") {
          if (this.#epochCache.size >= MAX_CACHED_ROOMS) this.#epochCache.clear();
          this.#epochCache.set(key, record.epoch);
          return record.epoch;
        }
      }
      const epoch = randomEpoch();
      try {
        await this.#epochs.put(kvKey, JSON.stringify({ epoch, stream: this.#streamCreated }), {
          previousSeq: entry?.revision ?? 0,
        });
        if (this.#epochCache.size >= MAX_CACHED_ROOMS) this.#epochCache.clear();
        this.#epochCache.set(key, epoch);
        return epoch;
      } catch (error) {
        if (!isWrongLastSequence(error)) throw error;
      }
    }
    throw new BackendUnavailableError(`history: the epoch of ${key} kept changing`);
  }

  async #lastOf(key: RoomKey, guess = false): Promise<Head> {
    const query = { last_by_subj: roomSubject(key, this.#prefix) };
    const last = this.#directExact || (this.#direct && guess)
      ? await this.#link.jsm.direct.getMessage(this.#stream, query)
      : await this.#link.jsm.streams.getMessage(this.#stream, query);
    if (last === null) return { seq: 0, offset: 0 };
    const head: Head = { seq: last.seq, offset: Number(last.header.get(HEADER_OFFSET)) || 0 };
    const epoch = last.header.get(HEADER_EPOCH);
    if (epoch) head.epoch = epoch;
    return head;
  }

  /**
   * The room's head and epoch. The cached epoch is used only when the head carries it, or is a message stored
   * before messages carried their epoch (no delete can have happened since: a delete purges it); otherwise (an empty
   * room, a head of another epoch after a delete elsewhere) the epoch is read from the bucket again.
   */
  async #current(key: RoomKey, guess = false): Promise<{ head: Head; epoch: string }> {
    const cached = this.#epochCache.get(key);
    if (cached === undefined) {
      const [epoch, head] = await Promise.all([this.#epoch(key), this.#lastOf(key, guess)]);
      return { head, epoch };
    }
    const head = await this.#lastOf(key, guess);
    if (head.seq > 0 && (head.epoch === undefined || head.epoch === cached)) return { head, epoch: cached };
    this.#epochCache.delete(key);
    return { head, epoch: await this.#epoch(key) };
  }

  #msgId(key: RoomKey, epoch: string, idempotencyKey: string): string {
    const hash = createHash("sha256").update(key).update("\u0000").update(epoch).update("\u0000");
    return hash.update(idempotencyKey).digest("base64url");
  }

  #decode(data: Uint8Array): Frame | undefined {
    const decoded = decodeProto(data, { from: "any", maxBytes: 64 * 1024 * 1024 });
    return decoded.ok ? decoded.frame : undefined;
  }

  /**
   * Stores `message` in room `key` under the next offset (gapless and unique across nodes; one node's appends to a
   * room keep call order) and resolves once JetStream has acknowledged it. With `idempotencyKey`, a repeat within the
   * stream's duplicate window is not stored again and resolves with the original (`duplicate: true`; offset 0 when
   * the original was already trimmed). Rejects with `BackendUnavailableError` when NATS fails or is unreachable, and
   * with `PayloadTooLargeError` above the NATS server's `max_payload`.
   */
  append(key: RoomKey, message: Frame, options?: AppendOptions): Promise<AppendResult> {
    try {
      this.#guard();
      roomSubject(key, this.#prefix);
    } catch (error) {
      return Promise.reject(error);
    }
    // One append per room at a time on this node: keeps call order, and spares the conflict retries among ourselves.
    const previous = this.#queues.get(key) ?? Promise.resolve();
    const run = previous.then(
      () => this.#withStream("history append", () => this.#append(key, message, options)),
      () => this.#withStream("history append", () => this.#append(key, message, options)),
    );
    const tail = run.catch(() => undefined);
    this.#queues.set(key, tail);
    void tail.then(() => {
      if (this.#queues.get(key) === tail) this.#queues.delete(key);
    });
    return run;
  }

  async #append(key: RoomKey, message: Frame, options?: AppendOptions): Promise<AppendResult> {
    this.#link.guard("history append");
    const subject = roomSubject(key, this.#prefix);
    const idempotencyKey = options?.idempotencyKey;
    for (let attempt = 0; attempt < MAX_APPEND_ATTEMPTS; attempt++) {
      // A cached head carries the epoch it was appended in; the publish below lands only if it is still the room's.
      const cached = this.#heads.get(key);
      const { head, epoch } =
        cached !== undefined ? { head: cached, epoch: cached.epoch! } : await this.#current(key, attempt === 0);
      const msgID = idempotencyKey ? this.#msgId(key, epoch, idempotencyKey) : undefined;
      const offset = head.offset + 1;
      const stored: Frame = { ...message, offset, epoch };
      const data = encodeProto(stored);
      this.#link.checkSize(data.length);
      const h = natsHeaders();
      h.set(HEADER_OFFSET, String(offset));
      h.set(HEADER_APPENDED_AT, String(Date.now()));
      h.set(HEADER_EPOCH, epoch);
      let ack;
      try {
        ack = await this.#link.js.publish(subject, data, {
          headers: h,
          expect: { lastSubjectSequence: head.seq },
          ...(msgID === undefined ? {} : { msgID }),
        });
      } catch (error) {
        this.#heads.delete(key);
        if (!isWrongLastSequence(error)) throw error;
        // A room's sequence going backwards means a new stream under the same name: new incarnation, new epoch.
        if ((await this.#lastOf(key)).seq < head.seq) throw Object.assign(new Error("stream re-created"), { streamGone: true });
        continue;
      }
      if (ack.duplicate) {
        const original = await this.#link.jsm.streams.getMessage(this.#stream, { seq: ack.seq });
        if (cached !== undefined && (original === null || original.header.get(HEADER_EPOCH) !== epoch)) {
          // The id was made from a cached epoch, and its original is gone or of another epoch: the room was deleted
          // elsewhere since (JetStream still remembers the id). Start over from the room's current epoch.
          this.#heads.delete(key);
          this.#epochCache.delete(key);
          continue;
        }
        const frame = original === null ? undefined : this.#decode(original.data);
        if (frame === undefined || frame.offset === undefined) return { message, offset: 0, epoch, duplicate: true };
        const copy = { ...frame, epoch };
        return { message: copy, offset: frame.offset, epoch, duplicate: true };
      }
      if (this.#heads.size >= MAX_CACHED_ROOMS) this.#heads.clear();
      this.#heads.set(key, { seq: ack.seq, offset, epoch });
      return { message: stored, offset, epoch, duplicate: false };
    }
    throw new BackendUnavailableError(`history append to ${key}: too much contention (${MAX_APPEND_ATTEMPTS} attempts)`);
  }

  async position(key: RoomKey): Promise<Position> {
    this.#guard();
    return this.#withStream("history position", async () => {
      const { head, epoch } = await this.#current(key);
      return { offset: head.offset, epoch };
    });
  }

  /**
   * The room's head, epoch and the messages its retention policy still keeps from offset `wantOffset` on (earlier
   * kept ones may be included). Sequences are stream-wide, so the offset of a sequence is unknown until read; the
   * scan starts a window before the head (message `o` has a sequence <= head.seq - (head.offset - o)) and widens
   * until it reaches `wantOffset` or the start of the stream.
   */
  async #load(key: RoomKey, wantOffset = 1): Promise<Loaded> {
    const subject = roomSubject(key, this.#prefix);
    const { head, epoch } = await this.#current(key);
    const { maxMessages, maxAgeMs, maxBytes } = this.#policy(key);
    const minOffset = head.offset - maxMessages + 1;
    const want = Math.max(wantOffset, minOffset, 1);
    let records: LogRecord[] = [];
    if (head.seq > 0 && want <= head.offset) {
      for (let window = Math.max(64, 2 * (head.offset - want + 1)); ; window *= 4) {
        const fromSeq = Math.max(1, head.seq - window + 1);
        records = await scanSubject(this.#link, this.#stream, subject, fromSeq);
        const first = records.length > 0 ? Number(records[0]!.header(HEADER_OFFSET)) || 0 : 0;
        if (fromSeq === 1 || (records.length > 0 && first <= want)) break;
      }
    }
    const now = Date.now();
    const cutoff = maxAgeMs > 0 ? now - maxAgeMs : Number.NEGATIVE_INFINITY;
    const visible: Loaded["visible"] = [];
    let trimmedBelowSeq = 0;
    for (const record of records) {
      if (record.seq > head.seq) break;
      const offset = Number(record.header(HEADER_OFFSET)) || 0;
      const appendedAt = Number(record.header(HEADER_APPENDED_AT)) || 0;
      if (offset < minOffset || appendedAt <= cutoff) {
        trimmedBelowSeq = record.seq + 1;
        continue;
      }
      if (offset < want) continue;
      const frame = this.#decode(record.data);
      if (frame === undefined) continue;
      frame.epoch = epoch;
      visible.push({ frame, time: messageTime(frame, appendedAt), seq: record.seq });
    }
    if (maxBytes > 0) {
      // Whether a message fits depends only on it and the newer ones, all of which were read: keep the newest
      // messages whose payloads fit, and always the newest one.
      let bytes = 0;
      let keepFrom = visible.length;
      while (keepFrom > 0) {
        bytes += visible[keepFrom - 1]!.frame.payload?.length ?? 0;
        if (bytes > maxBytes && keepFrom < visible.length) break;
        keepFrom--;
      }
      if (keepFrom > 0) {
        trimmedBelowSeq = Math.max(trimmedBelowSeq, visible[keepFrom - 1]!.seq + 1);
        visible.splice(0, keepFrom);
      }
    }
    if (trimmedBelowSeq > 0) this.#purge(key, subject, Math.min(trimmedBelowSeq, head.seq));
    return { head, epoch, visible };
  }

  /**
   * Drops messages the policy no longer keeps, below `belowSeq` (never the room's last message, which carries the
   * offset counter). Housekeeping only: reads already hide them, so a failure here is retried by a later read.
   */
  #purge(key: RoomKey, subject: string, belowSeq: number): void {
    const now = Date.now();
    if (belowSeq <= 1 || (this.#purgedAt.get(key) ?? 0) > now - 1000) return;
    this.#purgedAt.set(key, now);
    if (this.#purgedAt.size > 10_000) this.#purgedAt.clear();
    this.#link.jsm.streams.purge(this.#stream, { filter: subject, seq: belowSeq }).catch(() => this.#purgedAt.delete(key));
  }

  /**
   * A page of room `key`'s kept messages: offsets `fromOffset..toOffset` inclusive (0 or absent: unbounded),
   * ascending, or descending from `toOffset` with `reverse`. `fromTs`/`toTs` bound the message time (epoch ms, the
   * `x-timestamp` header) inclusively, `twistId` keeps one timeline, and `limit` (default `defaultReadLimit`) caps
   * the page after filtering. `position` is the room's newest position.
   */
  async read(key: RoomKey, query: HistoryQuery): Promise<HistoryPage> {
    this.#guard();
    const limit = query.limit !== undefined && query.limit > 0 ? query.limit : this.#defaultReadLimit;
    const filtered = !!(query.fromTs || query.toTs || query.twistId);
    const { head, epoch, visible } = await this.#withStream("history read", async () => {
      // Unfiltered backward pages need only the last `limit` offsets up to `toOffset`; otherwise read from `fromOffset`.
      if (query.reverse && !filtered) {
        const { offset } = await this.#lastOf(key);
        const to = Math.min(query.toOffset || offset, offset);
        return this.#load(key, Math.max(query.fromOffset || 1, to - limit + 1));
      }
      return this.#load(key, query.fromOffset || 1);
    });
    const from = query.fromOffset || 1;
    const to = Math.min(query.toOffset || head.offset, head.offset);
    const messages: Frame[] = [];
    const step = query.reverse ? -1 : 1;
    for (let i = query.reverse ? visible.length - 1 : 0; i >= 0 && i < visible.length && messages.length < limit; i += step) {
      const item = visible[i]!;
      const offset = item.frame.offset ?? 0;
      if (offset < from || offset > to) continue;
      if (query.fromTs !== undefined && query.fromTs !== 0 && item.time < query.fromTs) continue;
      if (query.toTs !== undefined && query.toTs !== 0 && item.time > query.toTs) continue;
      if (query.twistId !== undefined && query.twistId !== "" && item.frame.headers?.[HEADER_TWIST_ID] !== query.twistId) continue;
      messages.push(item.frame);
    }
    return { messages, position: { offset: head.offset, epoch } };
  }

  /**
   * Every message after `since`, in order, when all of them are still kept and there are at most `maxMessages`;
   * otherwise `recovered: false` with a reason (epoch_mismatch, position_ahead, retention_exceeded, too_many_missed).
   * Rejects with ARQ_POSITION_INVALID when `since.offset` is not a non-negative integer.
   */
  async recover(key: RoomKey, since: Position, maxMessages: number): Promise<RecoveryResult> {
    this.#guard();
    if (!Number.isSafeInteger(since.offset) || since.offset < 0) {
      throw new ArqonError(ErrorCode.POSITION_INVALID, "recovery offset must be a non-negative integer", {
        detail: { offset: since.offset },
      });
    }
    return this.#withStream("history recover", async () => {
      const { head, epoch } = await this.#current(key);
      const position = { offset: head.offset, epoch };
      if (since.epoch !== epoch) return { recovered: false, reason: "epoch_mismatch", position };
      if (since.offset > head.offset) return { recovered: false, reason: "position_ahead", position };
      if (since.offset === head.offset) return { recovered: true, messages: [], position };
      const minOffset = head.offset - this.#policy(key).maxMessages + 1;
      if (since.offset + 1 < minOffset) return { recovered: false, reason: "retention_exceeded", position };
      const loaded = await this.#load(key, since.offset + 1);
      const current = { offset: loaded.head.offset, epoch: loaded.epoch };
      const oldest = loaded.visible.length > 0 ? loaded.visible[0]!.frame.offset! : loaded.head.offset + 1;
      if (since.offset + 1 < oldest) return { recovered: false, reason: "retention_exceeded", position: current };
      const missed = loaded.visible.filter((v) => v.frame.offset! > since.offset);
      if (missed.length !== loaded.head.offset - since.offset) {
        return { recovered: false, reason: "retention_exceeded", position: current };
      }
      if (missed.length > Math.max(0, maxMessages)) return { recovered: false, reason: "too_many_missed", position: current };
      return { recovered: true, messages: missed.map((v) => v.frame), position: current };
    });
  }

  /**
   * Purges the tenant's room subjects from the stream, then removes their epoch records, so the rooms start over at
   * offset 1 under newly drawn epochs. This node's caches of those rooms are dropped; other nodes' caches correct
   * themselves (see the class comment).
   */
  async deleteTenant(tenant: string): Promise<number> {
    this.#guard();
    if (typeof tenant !== "string") {
      throw new ArqonError(ErrorCode.VALIDATION_ERROR, "tenant must be a string", { detail: { field: "tenant" } });
    }
    const token = escapeToken(tenant);
    const filter = `${this.#prefix}.${token}.>`;
    const removed = await this.#withStream("history delete tenant", async () => {
      this.#forget(token);
      const info = await this.#link.jsm.streams.info(this.#stream, { subjects_filter: filter });
      const rooms = Object.keys(info.state.subjects ?? {}).length;
      if (rooms > 0) await this.#link.jsm.streams.purge(this.#stream, { filter });
      const keys = await this.#epochs.keys(`${kvToken(tenant)}.*`);
      const stale: string[] = [];
      for await (const k of keys) stale.push(k);
      for (let i = 0; i < stale.length; i += 64) await Promise.all(stale.slice(i, i + 64).map((k) => this.#epochs.purge(k)));
      return rooms;
    });
    this.#forget(token);
    return removed;
  }

  /** Subjects (rooms) and messages of the stream, from its info (one request to the server, no scan). */
  async stats(): Promise<HistoryStats> {
    this.#guard();
    const info = await this.#withStream("history stats", () => this.#link.jsm.streams.info(this.#stream));
    return { rooms: info.state.num_subjects ?? 0, messages: info.state.messages };
  }

  /**
   * Purges the room's subject from the stream, then removes its epoch record, so the room starts over at offset 1
   * under a newly drawn epoch; other nodes' caches correct themselves as after `deleteTenant`.
   */
  async deleteRoom(key: RoomKey): Promise<boolean> {
    this.#guard();
    assertRoomKeyArgument(key);
    const subject = roomSubject(key, this.#prefix);
    const dropCaches = (): void => {
      for (const cache of [this.#epochCache, this.#heads, this.#purgedAt]) cache.delete(key);
    };
    const had = await this.#withStream("history delete room", async () => {
      dropCaches();
      const info = await this.#link.jsm.streams.info(this.#stream, { subjects_filter: subject });
      const stored = (info.state.subjects ?? {})[subject] ?? 0;
      if (stored > 0) await this.#link.jsm.streams.purge(this.#stream, { filter: subject });
      await this.#epochs.purge(roomKvKey(key));
      return stored > 0;
    });
    dropCaches();
    return had;
  }

  /** Drops this node's cached epochs, heads and purge times of the rooms of the escaped tenant `token`. */
  #forget(token: string): void {
    const prefix = token + ".";
    for (const cache of [this.#epochCache, this.#heads, this.#purgedAt]) {
      for (const key of cache.keys()) if (key.startsWith(prefix)) cache.delete(key);
    }
  }

  /** Stream name, subject prefix and epoch bucket this store uses. */
  get layout(): {
    /** The JetStream stream's name. */
    stream: string;
    /** Room messages are stored on `<subjectPrefix>.<tenant>.<room>`. */
    subjectPrefix: string;
    /** The KV bucket holding the rooms' epochs. */
    epochBucket: string;
  } {
    return { stream: this.#stream, subjectPrefix: this.#prefix, epochBucket: this.#epochBucket };
  }

  /**
   * Stops watching the stream's advisories and the link's status and drops the caches; later calls reject with
   * `BackendUnavailableError`. The stream, the bucket and the NatsLink are left as they are.
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.#advisories?.unsubscribe();
    this.#offStatus?.();
    this.#epochCache.clear();
    this.#heads.clear();
  }
}
