import type { Member } from "../frame/types.js";
import type { RoomKey } from "../room/names.js";
import type { Unsubscribe } from "../bus/types.js";
import { ArqonError, BackendUnavailableError, ErrorCode } from "../errors.js";
import { rethrowHandlerError, systemClock, type Clock, type HandlerErrorReporter } from "../clock.js";
import type { PresenceEvent, PresenceStore } from "./types.js";

/** Options of `new MemoryPresenceStore(options)`. */
export interface MemoryPresenceOptions {
  /**
   * Lease of each entry: a member not renewed (by `join` or `renew`) for this long is removed with reason "expired".
   * 0 keeps members until they leave.
   * @default 0
   */
  leaseMs?: number;
  /** How often expired members are swept. @default leaseMs / 2 (at least 10 ms) */
  sweepIntervalMs?: number;
  /** Time and timers, injectable for tests. @default systemClock */
  clock?: Clock;
  /** Receives what a watcher throws; the other watchers still run. @default rethrowHandlerError */
  onHandlerError?: HandlerErrorReporter;
}

interface Entry {
  member: Member;
  expiresAt: number;
}

type Watcher = (key: RoomKey, event: PresenceEvent) => void;

function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A copy the caller cannot change afterwards, with `joinedAt` set. */
function copyMember(member: Member, joinedAt: number | undefined): Member {
  const copy: Member = { ...member };
  if (member.info !== undefined) copy.info = member.info.slice();
  if (joinedAt !== undefined) copy.joinedAt = joinedAt;
  return copy;
}

function closed(): BackendUnavailableError {
  return new BackendUnavailableError("presence store is closed");
}

/**
 * Presence kept in this process. Members of a room are listed in join order. With `leaseMs`, whoever holds the
 * connections (the gateway) calls `renew` while they are alive; a periodic sweep (and every `list`) removes the rest.
 */
export class MemoryPresenceStore implements PresenceStore {
  readonly #rooms = new Map<RoomKey, Map<string, Entry>>();
  #watchers: readonly Watcher[] = [];
  readonly #leaseMs: number;
  readonly #clock: Clock;
  readonly #onHandlerError: HandlerErrorReporter;
  readonly #timer: unknown;
  #closed = false;

  constructor(options: MemoryPresenceOptions = {}) {
    this.#leaseMs = Math.max(0, options.leaseMs ?? 0);
    this.#clock = options.clock ?? systemClock;
    this.#onHandlerError = options.onHandlerError ?? rethrowHandlerError;
    if (this.#leaseMs > 0) {
      const every = options.sweepIntervalMs ?? Math.max(10, Math.floor(this.#leaseMs / 2));
      this.#timer = this.#clock.setInterval(() => this.sweep(), every);
    }
  }

  #expiry(now: number): number {
    return this.#leaseMs > 0 ? now + this.#leaseMs : Number.POSITIVE_INFINITY;
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

  /**
   * Stores a copy of `member` (`joinedAt` set to now unless given; an update keeps the first one) and renews its
   * lease. Watchers see `join` for a new member or a changed `userId`, `connections` or `info`; a repeat join with
   * the same values only renews.
   */
  async join(key: RoomKey, member: Member): Promise<void> {
    if (this.#closed) throw closed();
    const clientId = member.clientId;
    if (typeof clientId !== "string" || clientId === "") {
      throw new ArqonError(ErrorCode.FRAME_MISSING_FIELD, "a presence member needs a clientId", {
        detail: { field: "clientId" },
      });
    }
    const now = this.#clock.now();
    let room = this.#rooms.get(key);
    if (room === undefined) {
      room = new Map();
      this.#rooms.set(key, room);
    }
    const existing = room.get(clientId);
    if (existing !== undefined) {
      existing.expiresAt = this.#expiry(now);
      const old = existing.member;
      if (old.userId === member.userId && old.connections === member.connections && sameBytes(old.info, member.info)) return;
      existing.member = copyMember(member, old.joinedAt);
      this.#emit(key, { type: "join", member: existing.member });
      return;
    }
    const stored = copyMember(member, member.joinedAt ?? now);
    room.set(clientId, { member: stored, expiresAt: this.#expiry(now) });
    this.#emit(key, { type: "join", member: stored });
  }

  async leave(key: RoomKey, clientId: string, reason?: string): Promise<boolean> {
    if (this.#closed) throw closed();
    return this.#remove(key, clientId, reason);
  }

  #remove(key: RoomKey, clientId: string, reason: string | undefined): boolean {
    const room = this.#rooms.get(key);
    const entry = room?.get(clientId);
    if (room === undefined || entry === undefined) return false;
    room.delete(clientId);
    if (room.size === 0) this.#rooms.delete(key);
    this.#emit(key, reason === undefined ? { type: "leave", member: entry.member } : { type: "leave", member: entry.member, reason });
    return true;
  }

  /** Removes the room's expired members (watchers see their `leave`), then lists the rest in join order. */
  async list(key: RoomKey): Promise<Member[]> {
    if (this.#closed) throw closed();
    this.#sweepRoom(key, this.#clock.now());
    const room = this.#rooms.get(key);
    if (room === undefined) return [];
    const members: Member[] = [];
    for (const entry of room.values()) members.push(entry.member);
    return members;
  }

  /** Calls `handler` synchronously for every join and leave in every room; returns a function that removes it. */
  watch(handler: Watcher): Unsubscribe {
    this.#watchers = [...this.#watchers, handler];
    return () => {
      this.#watchers = this.#watchers.filter((w) => w !== handler);
    };
  }

  /**
   * Extends the lease of every member (no arguments), of one room, or of one member; returns how many were renewed.
   * A no-op without `leaseMs`.
   */
  renew(key?: RoomKey, clientId?: string): number {
    if (this.#closed || this.#leaseMs === 0) return 0;
    const expiresAt = this.#expiry(this.#clock.now());
    let renewed = 0;
    const rooms = key === undefined ? this.#rooms.values() : [this.#rooms.get(key)];
    for (const room of rooms) {
      if (room === undefined) continue;
      if (clientId !== undefined) {
        const entry = room.get(clientId);
        if (entry !== undefined) {
          entry.expiresAt = expiresAt;
          renewed++;
        }
        continue;
      }
      for (const entry of room.values()) {
        entry.expiresAt = expiresAt;
        renewed++;
      }
    }
    return renewed;
  }

  /** Removes every member whose lease ran out (watchers see `leave` with reason "expired"); returns how many. */
  sweep(): number {
    if (this.#closed || this.#leaseMs === 0) return 0;
    const now = this.#clock.now();
    let removed = 0;
    for (const key of [...this.#rooms.keys()]) removed += this.#sweepRoom(key, now);
    return removed;
  }

  #sweepRoom(key: RoomKey, now: number): number {
    if (this.#leaseMs === 0) return 0;
    const room = this.#rooms.get(key);
    if (room === undefined) return 0;
    let expired: string[] | undefined;
    for (const [clientId, entry] of room) if (entry.expiresAt <= now) (expired ??= []).push(clientId);
    if (expired === undefined) return 0;
    for (const clientId of expired) this.#remove(key, clientId, "expired");
    return expired.length;
  }

  /**
   * Stops the sweep timer and drops every member and watcher (no `leave` is emitted); `join`, `leave` and `list`
   * then reject with BackendUnavailableError. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== undefined) this.#clock.clearInterval(this.#timer);
    this.#rooms.clear();
    this.#watchers = [];
  }
}
