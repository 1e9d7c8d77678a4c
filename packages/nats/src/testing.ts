/**
 * @arqon/nats/testing — a real `nats-server -js` for tests (vitest is a peer dependency of this entry).
 *
 * ```ts
 * describeWithNats("history on JetStream", () => {
 *   let nats: NatsServerHandle;
 *   beforeAll(async () => { nats = await startNatsServer(); });
 *   afterAll(() => nats.stop());
 * });
 * ```
 *
 * @module @arqon/nats/testing
 */
import { describe, it } from "vitest";
import { natsServerBinary, natsServerVersion } from "./testing/server.js";

export { startNatsServer, natsServerBinary, natsServerVersion } from "./testing/server.js";
export type { NatsServerHandle, StartNatsServerOptions } from "./testing/server.js";

/**
 * `describe` when nats-server can be run. Without it the suite is skipped loudly (a console warning naming the missing
 * binary), unless `ARQON_REQUIRE_NATS=1`, in which case the suite fails.
 */
export function describeWithNats(name: string, body: () => void): void {
  if (natsServerVersion() !== null) {
    describe(name, body);
    return;
  }
  const binary = natsServerBinary();
  if (process.env.ARQON_REQUIRE_NATS === "1") {
    describe(name, () => {
      it("needs nats-server", () => {
        throw new Error(`ARQON_REQUIRE_NATS=1 but "${binary}" cannot be run (install the nats-server package)`);
      });
    });
    return;
  }
  console.warn(`[@arqon/nats] skipping "${name}": "${binary}" is not installed (set ARQON_REQUIRE_NATS=1 to fail instead)`);
  describe.skip(name, body);
}
