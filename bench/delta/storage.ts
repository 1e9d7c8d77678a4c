/**
 * Cost of durable history appends on the embedded LMDB store: sequential appends (one publisher waiting for each
 * ack) and concurrent appends (many publishers; LMDB batches them into shared commits), for both durability modes.
 *
 *   node --conditions=arqon-source --import tsx bench/delta/storage.ts [--count 5000]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { jsonBytes, roomKey } from "@arqon/core";
import { openEmbeddedStorage, type Durability } from "@arqon/server";

const { values } = parseArgs({ options: { count: { type: "string" } } });
const count = Number(values.count ?? 5_000);
const payload = jsonBytes({ symbol: "SYM01", bid: 101.2, ask: 101.24, last: 101.22, volume: 123456, ts: 1767225600000 });

async function measure(durability: Durability, concurrency: number): Promise<{ perSecond: number; meanUs: number }> {
  const dir = mkdtempSync(path.join(tmpdir(), "arqon-bench-"));
  const storage = await openEmbeddedStorage({ path: dir, durability });
  try {
    const rooms = Array.from({ length: 10 }, (_, i) => roomKey("bench", `room-${i}`));
    let next = 0;
    let latency = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < count) {
          const i = next++;
          const t0 = performance.now();
          await storage.history.append(rooms[i % rooms.length]!, { type: "message", payload });
          latency += performance.now() - t0;
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    return { perSecond: count / seconds, meanUs: (latency * 1000) / count };
  } finally {
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`history append bench: ${count} appends of ${payload.length} B over 10 rooms, node ${process.version}`);
console.log("| durability | concurrent publishers | appends/s | mean ack latency |");
console.log("|---|---|---|---|");
for (const durability of ["flush", "commit"] as const) {
  for (const concurrency of [1, 64]) {
    const r = await measure(durability, concurrency);
    console.log(`| ${durability} | ${concurrency} | ${r.perSecond.toFixed(0)} | ${(r.meanUs / 1000).toFixed(2)} ms |`);
  }
}
