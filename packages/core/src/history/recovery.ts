import { ArqonError, ErrorCode } from "../errors.js";
import type { Position } from "../frame/types.js";
import type { RecoveryFailure } from "./types.js";

/** Rejects a recovery position no store could serve (ARQ_POSITION_INVALID). */
export function assertRecoveryOffset(since: Position): void {
  if (!Number.isSafeInteger(since.offset) || since.offset < 0) {
    throw new ArqonError(ErrorCode.POSITION_INVALID, "recovery offset must be a non-negative integer", {
      detail: { offset: since.offset },
    });
  }
}

/**
 * The recovery rules every HistoryStore applies, in this order: a different epoch, a position the room never
 * reached, missed messages older than the oldest kept one, more missed messages than `maxMessages`. Returns the
 * refusal, or undefined when the messages after `since` can be replayed.
 */
export function recoveryRefusal(since: Position, head: Position, oldestKept: number, maxMessages: number): RecoveryFailure | undefined {
  if (since.epoch !== head.epoch) return "epoch_mismatch";
  if (since.offset > head.offset) return "position_ahead";
  if (since.offset + 1 < oldestKept) return "retention_exceeded";
  if (head.offset - since.offset > Math.max(0, maxMessages)) return "too_many_missed";
  return undefined;
}
