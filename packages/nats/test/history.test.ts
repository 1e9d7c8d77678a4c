import { afterAll, beforeAll } from "vitest";
import { describeHistoryContract } from "@arqon/core/testing";
import { describeWithNats, startNatsServer, type NatsServerHandle } from "@arqon/nats/testing";
import { JetStreamHistoryStore, NatsLink } from "../src/index.js";

describeWithNats("JetStream history store", () => {
  let nats: NatsServerHandle;
  beforeAll(async () => {
    nats = await startNatsServer();
  });
  afterAll(() => nats?.stop());

  describeHistoryContract("nats", async ({ retention }) => {
    const links = [await NatsLink.connect({ servers: nats.url }), await NatsLink.connect({ servers: nats.url })];
    const nodes = [
      await JetStreamHistoryStore.create({ link: links[0]!, retention }),
      await JetStreamHistoryStore.create({ link: links[1]!, retention }),
    ] as const;
    return {
      nodes,
      cleanup: async () => {
        await Promise.all(nodes.map((n) => n.close()));
        await Promise.all(links.map((l) => l.close()));
      },
    };
  });
});
