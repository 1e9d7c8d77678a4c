/** The NATS server a cluster node connects to when none is configured. */
export const DEFAULT_NATS_URL = "nats://127.0.0.1:4222";
