import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describeHistoryContract, describeKeyValueContract, describeRoomStateContract } from "@arqon/core/testing";
import { openEmbeddedStorage, type EmbeddedStorage } from "../src/storage/index.js";

/** A fresh LMDB directory per fixture; one store instance serves as both "nodes" (single-process backend). */
async function fixture<T>(
  pick: (storage: EmbeddedStorage) => T,
  options: Omit<Parameters<typeof openEmbeddedStorage>[0], "path"> = {},
): Promise<{ nodes: readonly [T, T]; cleanup: () => Promise<void> }> {
  const dir = mkdtempSync(path.join(tmpdir(), "arqon-lmdb-"));
  const storage = await openEmbeddedStorage({ path: dir, ...options });
  const store = pick(storage);
  return {
    nodes: [store, store],
    cleanup: async () => {
      await storage.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describeHistoryContract("lmdb", ({ retention, clock }) => fixture((s) => s.history, { retention, clock }), { time: "manual" });
describeHistoryContract("lmdb (wall clock, pattern rules)", ({ retention }) =>
  fixture((s) => s.history, { retention: [{ pattern: "**", ...retention }] }),
);
describeRoomStateContract("lmdb", ({ clock }) => fixture((s) => s.state, { clock }), { time: "manual" });
describeKeyValueContract("lmdb", ({ clock }) => fixture((s) => s.kv, { clock }), { time: "manual" });
