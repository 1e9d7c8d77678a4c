/**
 * @arqon/core/testing — contract suites every backend runs (vitest is a peer dependency of this entry), and the
 * helpers they use. A backend passes a factory that opens two connected handles ("nodes") per test:
 *
 * ```ts
 * describeBusContract("memory", async () => {
 *   const hub = new MemoryBusHub();
 *   const nodes = [new MemoryBus({ hub }), new MemoryBus({ hub })] as const;
 *   return { nodes, cleanup: async () => { await Promise.all(nodes.map((n) => n.close())); } };
 * });
 * ```
 *
 * @module @arqon/core/testing
 */
export { describeBusContract, describeControlPlaneContract } from "./testing/bus.js";
export type { BusContractFactory, ControlPlaneContractFactory } from "./testing/bus.js";
export { describeHistoryContract } from "./testing/history.js";
export type { HistoryContractEnv, HistoryContractFactory } from "./testing/history.js";
export { describePresenceContract } from "./testing/presence.js";
export type { PresenceContractEnv, PresenceContractFactory, PresenceContractFixture } from "./testing/presence.js";
export { describeRoomStateContract } from "./testing/state.js";
export type { RoomStateContractFactory } from "./testing/state.js";
export { describeKeyValueContract } from "./testing/kv.js";
export type { KeyValueContractFactory } from "./testing/kv.js";
export type { ContractEnv, ContractFixture, ContractOptions } from "./testing/fixture.js";
export { ManualClock } from "./testing/clock.js";
export { sleep, waitFor, waitForCount, json, parse, bytesOf, uniqueTenant, type WaitOptions } from "./testing/wait.js";
