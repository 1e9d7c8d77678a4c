/** A request of a bench client waiting for the server's reply (its `requestId`). */
export interface ReplyWaiter {
  resolve(): void;
  reject(e: Error): void;
}

/** Settles the waiter of a reply frame, if one waits for its `requestId`: an `error` frame rejects it. */
export function settleReply(replies: Map<string, ReplyWaiter>, f: { type: string; requestId?: string; error?: { code: string; message: string } }): void {
  if (!f.requestId) return;
  const w = replies.get(f.requestId);
  if (!w) return;
  replies.delete(f.requestId);
  if (f.type === "error") w.reject(new Error(`${f.error?.code}: ${f.error?.message}`));
  else w.resolve();
}
