import { DeliverPolicy, type JsMsg } from "@nats-io/jetstream";
import type { NatsLink } from "./link.js";

/** One message of a stream subject, as the backends read it back. */
export interface LogRecord {
  seq: number;
  data: Uint8Array;
  header(name: string): string | undefined;
}

const BATCH = 512;

/**
 * Every message stored on `subject` in `stream` with a sequence >= `fromSeq`, in stream order, through an ordered
 * consumer (one filter subject: works on nats-server 2.9). Stops at the count pending when the consumer was created, so
 * it never waits for messages appended afterwards.
 */
export async function scanSubject(link: NatsLink, stream: string, subject: string, fromSeq = 0): Promise<LogRecord[]> {
  const consumer = await link.js.consumers.get(stream, {
    filter_subjects: subject,
    ...(fromSeq > 1 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: fromSeq } : {}),
  });
  const info = await consumer.info(true);
  let remaining = info.num_pending;
  const out: LogRecord[] = [];
  for (let round = 0; remaining > 0 && round < 10_000; round++) {
    const want = Math.min(remaining, BATCH);
    const batch = await consumer.fetch({ max_messages: want, expires: 2000 });
    let got = 0;
    for await (const msg of batch) {
      out.push(record(msg));
      got++;
    }
    // Fewer than asked: the rest was trimmed meanwhile; waiting for more would only wait for new appends.
    if (got < want) break;
    remaining -= got;
  }
  return out;
}

function record(msg: JsMsg): LogRecord {
  return { seq: msg.seq, data: msg.data, header: (name) => msg.headers?.get(name) || undefined };
}
