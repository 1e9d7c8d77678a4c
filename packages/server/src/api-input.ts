import { ArqonError, ErrorCode, roomNameProblem } from "@arqon/core";

// Input checks shared by the server-API route files (api-rooms.ts, api-users.ts).

/** Refuses (VALIDATION_ERROR) a body field that is not in `allowed`. */
export function onlyFields(body: Record<string, unknown>, allowed: readonly string[]): void {
  for (const field of Object.keys(body)) {
    if (!allowed.includes(field)) throw new ArqonError(ErrorCode.VALIDATION_ERROR, `unknown field "${field}"`);
  }
}

/** Refuses (VALIDATION_ERROR) a query parameter that is not in `allowed`. */
export function onlyParams(query: URLSearchParams, allowed: readonly string[]): void {
  for (const name of query.keys()) {
    if (!allowed.includes(name)) throw new ArqonError(ErrorCode.VALIDATION_ERROR, `unknown query parameter "${name}"`);
  }
}

/** Refuses (ARQ_ROOM_INVALID) a room name the gateway would refuse; `where` names the field in the message. */
export function checkRoom(room: string, where = "room"): void {
  const problem = roomNameProblem(room);
  if (problem) throw new ArqonError(ErrorCode.ROOM_INVALID, `${where}: ${problem}`);
}

/** A whole number >= `min` (and <= `max`) from the query, or undefined when absent; VALIDATION_ERROR otherwise. */
export function wholeParam(query: URLSearchParams, name: string, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const raw = query.get(name);
  if (raw === null) return undefined;
  const n = /^[0-9]+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new ArqonError(ErrorCode.VALIDATION_ERROR, `${name} must be a whole number from ${min}${max === Number.MAX_SAFE_INTEGER ? "" : ` to ${max}`}`);
  }
  return n;
}
