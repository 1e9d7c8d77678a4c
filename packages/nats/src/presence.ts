import { randomBytes } from "node:crypto";
import { KvWatchInclude, type KV, type KvEntry as NatsKvEntry, type KvWatchEntry } from "@nats-io/kv";
import type { QueuedIterator } from "@nats-io/transport-node";
import {
  ArqonError,
  BackendUnavailableError,
  ErrorCode,
  fromBase64,
  toBase64,
  type Member,
  type PresenceEvent,
  type PresenceStore,
  type RoomKey,
  type Unsubscribe,
} from "@arqon/core";
import type { HandlerErrorReporter } from "./bus.js";
import { isWrongLastSequence, type NatsLink } from "./link.js";
import { kvToken, roomKeyOfKv, roomKvKey } from "./subjects.js";

/** The KV bucket {@link NatsKvPresenceStore} keeps members and node heartbeats in unless `bucket` names another. */
export const DEFAULT_PRESENCE_BUCKET = "ARQON_PRESENCE";

/** Options of `NatsKvPresenceStore.create(options)`. */
export interface NatsKvPresenceOptions {
  /** The node's NATS connection. */
  link: NatsLink;
  /** The KV bucket's name. @default "ARQON_PRESENCE" */
  bucket?: string;
  /**
   * A node that has not renewed for this long is dead: any live node removes its members (watchers see `leave` with
   * reason "expired").
   * @default 15000
   */
  leaseMs?: number;
  /** How often this node renews its lease. @default leaseMs / 3 */
  renewIntervalMs?: number;
  /** How often this node looks for expired members. @default leaseMs / 4 */
  sweepIntervalMs?: number;
  /** This node's id in member entries and its heartbeat key. @default random */
  nodeId?: string;
  /** JetStream replicas when this call creates the bucket. @default 1 */
  replicas?: number;
  /** Receives what a `watch` handler throws (the other handlers still run). @default rethrow on a microtask */
  onHandlerError?: HandlerErrorReporter;
}

/** A member entry as stored: the member, the node holding its connection, and (tombstones) why it left. */
interface Stored {
  c: string;
  u?: string;
  i?: string;
  j?: number;
  n?: number;
  /** Owner node id. */
  o: string;
  /** Tombstone: the member left, with this reason ("" for none). */
  l?: string;
}

/** A mirrored member entry, kept compact (every gateway mirrors every member): the stored JSON text, parsed on use. */
interface Mirrored {
  raw: string;
  /** Interned: one string per node. */
  owner: string;
  revision: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function toStored(member: Member, owner: string): Stored {
  const s: Stored = { c: member.clientId!, o: owner };
  if (member.userId !== undefined) s.u = member.userId;
  if (member.info !== undefined) s.i = toBase64(member.info);
  if (member.joinedAt !== undefined) s.j = member.joinedAt;
  if (member.connections !== undefined) s.n = member.connections;
  return s;
}

function toMember(s: Stored): Member {
  const m: Member = { clientId: s.c };
  if (s.u !== undefined) m.userId = s.u;
  if (s.i !== undefined) m.info = fromBase64(s.i) ?? new Uint8Array(0);
  if (s.j !== undefined) m.joinedAt = s.j;
  if (s.n !== undefined) m.connections = s.n;
  return m;
}

function parse(entry: { value: Uint8Array; operation: string } | null): Stored | undefined {
  if (entry === null || entry.operation !== "PUT") return undefined;
  return parseText(decoder.decode(entry.value));
}

function parseText(text: string): Stored | undefined {
  try {
    const s = JSON.parse(text) as Stored;
    return typeof s.c === "string" && typeof s.o === "string" ? s : undefined;
  } catch {
    return undefined;
  }
}

/** What makes a join visible to watchers: a change of any of these is an info change. */
function identity(s: Stored): string {
  return JSON.stringify([s.u ?? null, s.i ?? null, s.n ?? null]);
}

const MAX_ATTEMPTS = 50;
const SWEEP_CONCURRENCY = 32;

/**
 * Presence on NATS KV (bucket `ARQON_PRESENCE`, nats-server 2.9: no per-key TTL):
 *
 * - Member entries `m.<tenant>.<room>.<clientId>` name the node holding the connection. Leases are per node: each
 *   node writes its heartbeat key `n.<nodeId>` every `renewIntervalMs`, which renews all of its members at once.
 * - Every node follows the whole bucket with a KV watch: member puts become `join` events (new entry or changed
 *   info), tombstones and deletes become `leave` events, in the bucket's order. Heartbeats are timed on the watching
 *   node's own clock (when it saw them), so clock skew between hosts does not matter.
 * - Any live node sweeps: members whose node has not been heard from for `leaseMs` are replaced by a tombstone with
 *   reason "expired" (a compare-and-set on the entry's revision, so exactly one sweeper wins) and then deleted.
 * - A node that comes back (reconnect) re-asserts its members; so does a live node whose member was swept by mistake.
 */
export class NatsKvPresenceStore implements PresenceStore {
  readonly #link: NatsLink;
  readonly #kv: KV;
  /** This node's id: the owner its member entries name, and its heartbeat key `n.<nodeId>`. */
  readonly nodeId: string;
  readonly #leaseMs: number;
  readonly #mirror = new Map<string, Mirrored>();
  readonly #owners = new Map<string, string>();
  /** Room prefix (`m.<tenant>.<room>.`) → KV keys of its members in the mirror. */
  readonly #rooms = new Map<string, Set<string>>();
  /** Node id → local time it was last heard from (-Infinity once it is known to be gone). */
  readonly #seen = new Map<string, number>();
  /** Node id → revision of its heartbeat key (for removing the keys of dead nodes). */
  readonly #heartbeatRevision = new Map<string, number>();
  /** Highest bucket revision the watch has applied, and the highest this node wrote. */
  #watched = 0;
  #written = 0;
  #caughtUp: (() => void)[] = [];
  /** Members this node holds, by KV key. */
  readonly #own = new Map<string, Member>();
  #watchers: readonly ((key: RoomKey, event: PresenceEvent) => void)[] = [];
  readonly #onHandlerError: HandlerErrorReporter;
  #iter?: QueuedIterator<KvWatchEntry>;
  #renewTimer?: ReturnType<typeof setInterval>;
  #sweepTimer?: ReturnType<typeof setInterval>;
  #offStatus?: () => void;
  #halted = false;
  #closed = false;

  private constructor(link: NatsLink, kv: KV, options: NatsKvPresenceOptions) {
    this.#link = link;
    this.#kv = kv;
    this.nodeId = options.nodeId ?? randomBytes(8).toString("hex");
    this.#leaseMs = options.leaseMs ?? 15_000;
    this.#onHandlerError =
      options.onHandlerError ??
      ((error) =>
        queueMicrotask(() => {
          throw error;
        }));
  }

  /** Opens (creating if needed) the bucket, starts following it, writes the first heartbeat and starts the timers. */
  static async create(options: NatsKvPresenceOptions): Promise<NatsKvPresenceStore> {
    const { link } = options;
    try {
      const kv = await link.kvm.create(options.bucket ?? DEFAULT_PRESENCE_BUCKET, { history: 1, replicas: options.replicas ?? 1 });
      const store = new NatsKvPresenceStore(link, kv, options);
      await store.#start(options);
      return store;
    } catch (error) {
      throw link.fail("presence store", error);
    }
  }

  async #start(options: NatsKvPresenceOptions): Promise<void> {
    const status = await this.#link.jsm.streams.info(`KV_${options.bucket ?? DEFAULT_PRESENCE_BUCKET}`);
    this.#iter = await this.#kv.watch({ key: ">", include: KvWatchInclude.LastValue });
    const iter = this.#iter;
    void (async () => {
      for await (const e of iter) this.#apply(e);
    })();
    // The newest message of a bucket is always some key's last value, so the initial values are in once it arrived.
    this.#written = status.state.last_seq;
    await this.#catchUp();
    await this.renew();
    const renewEvery = Math.max(10, options.renewIntervalMs ?? Math.floor(this.#leaseMs / 3));
    const sweepEvery = Math.max(10, options.sweepIntervalMs ?? Math.floor(this.#leaseMs / 4));
    this.#renewTimer = setInterval(() => void this.renew().catch(() => undefined), renewEvery);
    this.#sweepTimer = setInterval(() => void this.sweep().catch(() => undefined), sweepEvery);
    this.#renewTimer.unref?.();
    this.#sweepTimer.unref?.();
    this.#offStatus = this.#link.onStatus((status) => {
      if (status === "connected" && !this.#halted) void this.#reassert().catch(() => undefined);
    });
  }

  #emit(key: RoomKey, event: PresenceEvent): void {
    const watchers = this.#watchers;
    for (let i = 0; i < watchers.length; i++) {
      try {
        watchers[i]!(key, event);
      } catch (error) {
        this.#onHandlerError(error);
      }
    }
  }

  #apply(e: KvWatchEntry): void {
    try {
      this.#applyEntry(e);
    } finally {
      if (e.revision > this.#watched) this.#watched = e.revision;
      if (this.#watched >= this.#written && this.#caughtUp.length > 0) {
        const waiting = this.#caughtUp;
        this.#caughtUp = [];
        for (const resolve of waiting) resolve();
      }
    }
  }

  /** Resolves once the watch has applied every write this node made (and, at start, the bucket's initial values). */
  #catchUp(timeoutMs = 5000): Promise<void> {
    if (this.#watched >= this.#written) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#caughtUp = this.#caughtUp.filter((r) => r !== done);
        reject(new BackendUnavailableError(`presence: the KV watch is behind (at ${this.#watched}, need ${this.#written})`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.#caughtUp.push(done);
    });
  }

  #wrote(revision: number): void {
    if (revision > this.#written) this.#written = revision;
  }

  #applyEntry(e: KvWatchEntry): void {
    const now = Date.now();
    if (e.key.startsWith("n.")) {
      const node = e.key.slice(2);
      this.#seen.set(node, e.operation === "PUT" ? now : Number.NEGATIVE_INFINITY);
      if (e.operation === "PUT") this.#heartbeatRevision.set(node, e.revision);
      else this.#heartbeatRevision.delete(node);
      return;
    }
    if (!e.key.startsWith("m.")) return;
    const dot = e.key.lastIndexOf(".");
    const prefix = e.key.slice(0, dot + 1);
    const room = roomKeyOfKv(e.key.slice(2, dot));
    const raw = e.operation === "PUT" ? decoder.decode(e.value) : "";
    const stored = raw === "" ? undefined : parseText(raw);
    const previous = this.#mirror.get(e.key);
    if (stored !== undefined && stored.l === undefined) {
      if (!this.#seen.has(stored.o)) this.#seen.set(stored.o, now);
      let owner = this.#owners.get(stored.o);
      if (owner === undefined) this.#owners.set(stored.o, (owner = stored.o));
      this.#mirror.set(e.key, { raw, owner, revision: e.revision });
      let members = this.#rooms.get(prefix);
      if (members === undefined) this.#rooms.set(prefix, (members = new Set()));
      members.add(e.key);
      if (!e.isUpdate) return;
      const before = previous === undefined ? undefined : parseText(previous.raw);
      if (before === undefined || identity(before) !== identity(stored)) this.#emit(room, { type: "join", member: toMember(stored) });
      return;
    }
    if (previous === undefined) return;
    this.#mirror.delete(e.key);
    const members = this.#rooms.get(prefix);
    members?.delete(e.key);
    if (members?.size === 0) this.#rooms.delete(prefix);
    const reason = stored?.l;
    const left = parseText(previous.raw);
    const member = left === undefined ? {} : toMember(left);
    this.#emit(room, reason ? { type: "leave", member, reason } : { type: "leave", member });
    // A live node whose member was swept (its heartbeats were late) puts it back.
    const own = this.#own.get(e.key);
    if (own !== undefined && reason === "expired" && !this.#halted && !this.#closed) {
      void this.#put(e.key, own).catch(() => undefined);
    }
  }

  #guard(): void {
    if (this.#closed) throw new BackendUnavailableError("presence store is closed");
    this.#link.guard("presence");
  }

  #kvKey(key: RoomKey, clientId: string): string {
    return `m.${roomKvKey(key)}.${kvToken(clientId)}`;
  }

  async #put(kvKey: string, member: Member): Promise<void> {
    const data = encoder.encode(JSON.stringify(toStored(member, this.nodeId)));
    this.#link.checkSize(data.length);
    this.#wrote(await this.#kv.put(kvKey, data));
  }

  /**
   * Adds this node's member to room `key`, or updates it (an upsert by `clientId`); it lives as long as this node's
   * lease and is re-asserted after a reconnect. A member without `joinedAt` keeps the stored one (or gets now).
   * Rejects with ARQ_FRAME_MISSING_FIELD without a `clientId`.
   */
  async join(key: RoomKey, member: Member): Promise<void> {
    this.#guard();
    const clientId = member.clientId;
    if (typeof clientId !== "string" || clientId === "") {
      throw new ArqonError(ErrorCode.FRAME_MISSING_FIELD, "a presence member needs a clientId", { detail: { field: "clientId" } });
    }
    const kvKey = this.#kvKey(key, clientId);
    try {
      // The gateway passes the subscription's joinedAt; only without one does an update need the stored entry's.
      let joinedAt = member.joinedAt;
      if (joinedAt === undefined) {
        const existing = parse(await this.#kv.get(kvKey));
        joinedAt = existing !== undefined && existing.l === undefined ? existing.j : Date.now();
      }
      const stored: Member = { ...member };
      if (joinedAt !== undefined) stored.joinedAt = joinedAt;
      this.#own.set(kvKey, stored);
      await this.#put(kvKey, stored);
    } catch (error) {
      throw this.#link.fail("presence join", error);
    }
  }

  async leave(key: RoomKey, clientId: string, reason?: string): Promise<boolean> {
    this.#guard();
    const kvKey = this.#kvKey(key, clientId);
    this.#own.delete(kvKey);
    try {
      return await this.#remove(kvKey, reason ?? "");
    } catch (error) {
      throw this.#link.fail("presence leave", error);
    }
  }

  /** Replaces a live entry by a tombstone (compare-and-set), then deletes it. Resolves true if this call removed it. */
  async #remove(kvKey: string, reason: string, expectRevision?: number): Promise<boolean> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current: NatsKvEntry | null = await this.#kv.get(kvKey);
      const stored = parse(current);
      if (current === null || stored === undefined || stored.l !== undefined) return false;
      if (expectRevision !== undefined && current.revision !== expectRevision) return false;
      let tomb: number;
      try {
        tomb = await this.#kv.put(kvKey, encoder.encode(JSON.stringify({ ...stored, l: reason })), { previousSeq: current.revision });
        this.#wrote(tomb);
      } catch (error) {
        if (!isWrongLastSequence(error)) throw error;
        if (expectRevision !== undefined) return false;
        continue;
      }
      try {
        await this.#kv.delete(kvKey, { previousSeq: tomb });
      } catch (error) {
        // Someone joined again right after the tombstone: their entry stays.
        if (!isWrongLastSequence(error)) throw error;
      }
      return true;
    }
    throw new BackendUnavailableError(`presence leave of ${kvKey}: too much contention`);
  }

  #alive(owner: string, now: number): boolean {
    if (owner === this.nodeId) return !this.#halted;
    const seen = this.#seen.get(owner);
    return seen === undefined || now - seen <= this.#leaseMs;
  }

  /**
   * The room's members from this node's mirror of the bucket, once the watch has applied every write this node made
   * (read-your-writes without a round trip to NATS), without members of nodes whose lease ran out.
   */
  async list(key: RoomKey): Promise<Member[]> {
    this.#guard();
    const prefix = `m.${roomKvKey(key)}.`;
    await this.#catchUp();
    const now = Date.now();
    const members: Member[] = [];
    for (const kvKey of this.#rooms.get(prefix) ?? []) {
      const m = this.#mirror.get(kvKey);
      if (m === undefined || !this.#alive(m.owner, now)) continue;
      const stored = parseText(m.raw);
      if (stored !== undefined) members.push(toMember(stored));
    }
    return members.sort((a, b) => (a.joinedAt ?? 0) - (b.joinedAt ?? 0));
  }

  /**
   * Calls `handler` with every `join` (a new member, or changed user, info or connections) and `leave` (with its
   * reason, e.g. "expired") in any room, by any node, from now on, in the bucket's order; returns a function that
   * removes it. What it throws goes to `onHandlerError`.
   */
  watch(handler: (key: RoomKey, event: PresenceEvent) => void): Unsubscribe {
    this.#watchers = [...this.#watchers, handler];
    return () => {
      this.#watchers = this.#watchers.filter((w) => w !== handler);
    };
  }

  /** Writes this node's heartbeat now (the timer does it every `renewIntervalMs`). */
  async renew(): Promise<void> {
    if (this.#closed || this.#halted) return;
    this.#link.guard("presence renew");
    this.#wrote(await this.#kv.put(`n.${this.nodeId}`, encoder.encode(JSON.stringify({ at: Date.now() }))));
  }

  /** Removes the members of nodes not heard from for `leaseMs`; resolves with how many this node removed. */
  async sweep(): Promise<number> {
    if (this.#closed || this.#halted || this.#link.status !== "connected") return 0;
    const now = Date.now();
    let removed = 0;
    const expired: [string, number][] = [];
    for (const [kvKey, m] of this.#mirror) if (!this.#alive(m.owner, now)) expired.push([kvKey, m.revision]);
    // Many at a time (a dead node may have held thousands), starting at a random point so sweepers rarely collide.
    const start = Math.floor(Math.random() * expired.length);
    for (let i = 0; i < expired.length; i += SWEEP_CONCURRENCY) {
      const batch = Array.from({ length: Math.min(SWEEP_CONCURRENCY, expired.length - i) }, (_, j) => expired[(start + i + j) % expired.length]!);
      const results = await Promise.all(batch.map(([kvKey, revision]) => this.#remove(kvKey, "expired", revision)));
      removed += results.filter(Boolean).length;
    }
    const owners = new Set<string>();
    for (const m of this.#mirror.values()) owners.add(m.owner);
    for (const [node, seen] of [...this.#seen]) {
      if (seen === Number.NEGATIVE_INFINITY && !this.#heartbeatRevision.has(node) && !owners.has(node)) {
        this.#seen.delete(node);
        this.#owners.delete(node);
      }
    }
    // Heartbeat keys of dead nodes go too, once their members are gone (a late heartbeat keeps its key: CAS).
    for (const [node, revision] of [...this.#heartbeatRevision]) {
      if (node === this.nodeId || this.#alive(node, now)) continue;
      if (owners.has(node)) continue;
      this.#heartbeatRevision.delete(node);
      await this.#kv.delete(`n.${node}`, { previousSeq: revision }).catch((error: unknown) => {
        if (!isWrongLastSequence(error)) throw error;
      });
    }
    return removed;
  }

  async #reassert(): Promise<void> {
    await this.renew();
    for (const [kvKey, member] of this.#own) await this.#put(kvKey, member);
  }

  /** Stops renewing and sweeping as if this node had died, leaving its members in place (failure tests). */
  halt(): void {
    this.#halted = true;
    clearInterval(this.#renewTimer);
    clearInterval(this.#sweepTimer);
  }

  /** How many members this node holds (what it re-asserts after a reconnect). */
  get ownMembers(): number {
    return this.#own.size;
  }

  /**
   * Stops the timers and the watch and drops the watchers. Unless halted or disconnected, deletes this node's
   * heartbeat key, so that the other nodes expire the members it still held at their next sweep. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#renewTimer);
    clearInterval(this.#sweepTimer);
    this.#offStatus?.();
    this.#iter?.stop();
    this.#watchers = [];
    // Without a heartbeat key, the other nodes expire whatever members this node still held at their next sweep.
    if (!this.#halted && this.#link.status === "connected") {
      await this.#kv.delete(`n.${this.nodeId}`).catch(() => undefined);
    }
  }
}

