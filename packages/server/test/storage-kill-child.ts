/**
 * Child process of storage-kill.test.ts: opens embedded storage in argv[2] and writes until killed, printing one line
 * per acknowledged write: `history <offset> <epoch> <n>`, `kv <revision> <n>`, `state <version> <n>`.
 */
import { jsonBytes as json, roomKey } from "@arqon/core";
import { openEmbeddedStorage } from "../src/storage/index.js";

const dir = process.argv[2]!;
const limit = Number(process.argv[3] ?? "100000");
const storage = await openEmbeddedStorage({ path: dir });
const key = roomKey("acme", "orders");
process.stdout.write("ready\n");
for (let n = 1; n <= limit; n++) {
  const res = await storage.history.append(key, { type: "message", room: "orders", payload: json({ n }) }, { idempotencyKey: `order-${n}` });
  process.stdout.write(`history ${res.offset} ${res.epoch} ${n}\n`);
  if (n % 5 === 0) {
    const revision = await storage.kv.put("orders", "last", json({ n }));
    process.stdout.write(`kv ${revision} ${n}\n`);
    const entry = await storage.state.set(key, { key: "last", value: json({ n }) });
    process.stdout.write(`state ${entry.version} ${n}\n`);
  }
}
await storage.close();
