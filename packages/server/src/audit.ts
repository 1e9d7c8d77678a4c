import { ArqonError, ErrorCode, isValidTenant, jsonBytes, parseJsonBytes, roomKey, type HistoryStore, type RoomKey } from "@arqon/core";
import type { Logger } from "pino";

/**
 * The reserved room holding a tenant's audit trail in the history store. `$` is not allowed in room names, so no
 * client can subscribe to it, publish to it or collide with it.
 */
export const AUDIT_ROOM = "$audit";
/** The trail of server-wide operator actions (baseline CASIL reloads, tenant deletions) is kept under this name. */
export const SERVER_AUDIT_TENANT = "$server";
/** What the audit trail keeps per tenant: the newest 10,000 records, and none older than 30 days. */
export const AUDIT_RETENTION = { maxMessages: 10_000, maxAgeMs: 30 * 86_400_000, maxBytes: 0 };

/** Who did it: an operator (by key id, never the key) or a tenant principal. */
export type AuditActor =
  | {
      /** The operator. */
      kind: "operator";
      /** The public id of the operator key (`key:` and 8 hex digits of its SHA-256), or a name such as "in-process". */
      key: string;
    }
  | {
      /** A token of a tenant: an admin (`role: "admin"`), the tenant's backend (`role: "server"`) or a user. */
      kind: "tenant_admin" | "tenant_server" | "user";
      /** The token's tenant. */
      tenant: string;
      /** The token's `sub`. */
      sub: string;
    };

/** One structured audit record. */
export interface AuditRecord {
  /** When it was recorded, as an ISO 8601 UTC timestamp. */
  time: string;
  /** Who did it. */
  actor: AuditActor;
  /** The tenant acted on ("$server" for server-wide actions). */
  tenant: string;
  /** e.g. "tenant.disable", "casil.layer.reload", "op.cron.schedule". */
  action: string;
  /** What was acted on (a tenant, a user, a client id, a hook name), when there is one. */
  target?: string;
  /** "ok", or the error code of a refusal. */
  result: string;
  /** Facts of the action, when it reports any (e.g. the limits set, the connections closed on this node). */
  detail?: Record<string, unknown>;
}

export function auditKey(tenant: string): RoomKey {
  return roomKey(tenant, AUDIT_ROOM);
}

/** Whether a history key is an audit trail (for retention). */
export function isAuditKey(key: RoomKey): boolean {
  return key.endsWith(`.${roomKey("x", AUDIT_ROOM).split(".")[1]}`);
}

/**
 * The audit trail: every operator and tenant-admin action writes one structured log line (`audit` at info) and one
 * record in its tenant's trail, kept in the history store (embedded LMDB, or JetStream in a cluster) under the
 * reserved room `$audit`, so it persists, is shared by every node and is read newest first. Writing never fails the
 * action: a store error is logged.
 */
export class AuditLog {
  constructor(
    private readonly history: HistoryStore,
    private readonly logger: Logger,
  ) {}

  /**
   * Writes one record, stamped with the current time, to the log and to the trail of `entry.tenant`. Never rejects:
   * a store failure is logged.
   */
  async record(entry: Omit<AuditRecord, "time">): Promise<void> {
    const record: AuditRecord = { time: new Date().toISOString(), ...entry };
    this.logger.info({ audit: record }, "audit");
    try {
      await this.history.append(auditKey(entry.tenant), { type: "message", room: AUDIT_ROOM, payload: jsonBytes(record), timestamp: Date.now() });
    } catch (err) {
      this.logger.error({ err, audit: record }, "audit record not stored");
    }
  }

  /**
   * Runs an action and records it (in `tenant`'s trail, or the server's when `tenant` is not a tenant name) with its
   * outcome: "ok", or the error code it failed with (the error is rethrown).
   */
  async track<T>(
    actor: AuditActor,
    action: string,
    tenant: string,
    run: () => Promise<T>,
    detail?: (result: T) => Record<string, unknown>,
    target = tenant,
  ): Promise<T> {
    const trail = isValidTenant(tenant) ? tenant : SERVER_AUDIT_TENANT;
    try {
      const result = await run();
      await this.record({ actor, tenant: trail, action, target, result: "ok", ...(detail ? { detail: detail(result) } : {}) });
      return result;
    } catch (err) {
      await this.record({ actor, tenant: trail, action, target, result: err instanceof ArqonError ? err.code : ErrorCode.INTERNAL });
      throw err;
    }
  }

  /** Records of `tenant`, newest first: at most `limit` (1-1000), older than offset `before` when given. */
  async list(
    tenant: string,
    options: { limit?: number; before?: number } = {},
  ): Promise<{
    /** The records, newest first. */
    records: Array<
      AuditRecord & {
        /** The record's offset in the trail. */
        offset: number;
      }
    >;
    /** The `before` of the next, older page; absent when this page is short or reaches the first record. */
    next?: number;
  }> {
    const limit = options.limit ?? 100;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000) throw new ArqonError(ErrorCode.VALIDATION_ERROR, "limit must be 1-1000");
    if (options.before !== undefined && (!Number.isSafeInteger(options.before) || options.before < 1)) {
      throw new ArqonError(ErrorCode.VALIDATION_ERROR, "before must be a positive offset");
    }
    const page = await this.history.read(auditKey(tenant), {
      limit,
      reverse: true,
      ...(options.before !== undefined ? { toOffset: options.before - 1 } : {}),
    });
    const records = page.messages.map((m) => ({ ...(parseJsonBytes(m.payload!) as AuditRecord), offset: m.offset ?? 0 }));
    const last = records.at(-1);
    return last && records.length >= limit && last.offset > 1 ? { records, next: last.offset } : { records };
  }
}
