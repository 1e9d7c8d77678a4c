import { connectWorkload } from "./connect.js";
import { fanoutWorkload } from "./fanout.js";
import { idleMemoryWorkload } from "./idle-memory.js";
import { roomsWorkload } from "./rooms.js";
import { slowConsumerWorkload } from "./slow-consumer.js";
import type { Workload } from "./types.js";

/** Every workload, in run order; a new one is one file and one line here. */
export const WORKLOADS: Workload[] = [fanoutWorkload(1000), fanoutWorkload(10_000), roomsWorkload, slowConsumerWorkload, idleMemoryWorkload, connectWorkload];
