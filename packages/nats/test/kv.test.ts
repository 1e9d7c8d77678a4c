import { afterAll, beforeAll } from "vitest";
import { describeKeyValueContract } from "@arqon/core/testing";
import { describeWithNats, startNatsServer, type NatsServerHandle } from "@arqon/nats/testing";
import { NatsKvKeyValueStore, NatsLink } from "../src/index.js";

describeWithNats("NATS KV key-value store", () => {
  let nats: NatsServerHandle;
  beforeAll(async () => {
    nats = await startNatsServer();
  });
  afterAll(() => nats?.stop());

  describeKeyValueContract("nats", async () => {
    const links = [await NatsLink.connect({ servers: nats.url }), await NatsLink.connect({ servers: nats.url })];
    const nodes = [await NatsKvKeyValueStore.create({ link: links[0]! }), await NatsKvKeyValueStore.create({ link: links[1]! })] as const;
    return {
      nodes,
      cleanup: async () => {
        await Promise.all(nodes.map((n) => n.close()));
        await Promise.all(links.map((l) => l.close()));
      },
    };
  });
});
