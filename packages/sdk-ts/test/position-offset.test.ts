import { afterEach, describe, expect, it } from "vitest";
import { startGateway, type TestGateway } from "@arqon/server/testing";
import { ArqonClient } from "../src/index.js";
import "../src/protobuf.js";

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

describe("room - position of an empty room", () => {
  for (const codec of ["json", "protobuf"] as const) {
    it(`position - ${codec}: the server leaves offset 0 out of subscribed; the room reads it as offset 0 with the epoch`, async () => {
      const gw: TestGateway = await startGateway();
      cleanup.push(() => gw.close());
      const raw = await gw.client({ sub: "probe", codec });
      const reply = await raw.subscribe("empty");
      expect(reply.type).toBe("subscribed");
      expect(reply.offset ?? undefined).toBeUndefined();
      expect(reply.epoch).toMatch(/.+/);
      const c = new ArqonClient(gw.url, { token: await gw.token({ sub: "alice" }), codec });
      cleanup.push(() => c.close());
      await c.connect();
      const room = c.room("empty");
      await room.subscribe(() => {});
      expect(room.position).toEqual({ offset: 0, epoch: reply.epoch });
    });
  }
});
