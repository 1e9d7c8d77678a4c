import { afterAll, beforeAll } from "vitest";
import { describePresenceContract } from "@arqon/core/testing";
import { describeWithNats, startNatsServer, type NatsServerHandle } from "@arqon/nats/testing";
import { NatsKvPresenceStore, NatsLink } from "../src/index.js";

describeWithNats("NATS KV presence store", () => {
  let nats: NatsServerHandle;
  beforeAll(async () => {
    nats = await startNatsServer();
  });
  afterAll(() => nats?.stop());

  describePresenceContract("nats", async ({ leaseMs }) => {
    const links = [await NatsLink.connect({ servers: nats.url }), await NatsLink.connect({ servers: nats.url })];
    const nodes = [
      await NatsKvPresenceStore.create({ link: links[0]!, leaseMs }),
      await NatsKvPresenceStore.create({ link: links[1]!, leaseMs }),
    ] as const;
    return {
      nodes,
      renew: (node) => nodes[node].renew(),
      halt: async (node) => nodes[node].halt(),
      cleanup: async () => {
        await Promise.all(nodes.map((n) => n.close()));
        await Promise.all(links.map((l) => l.close()));
      },
    };
  });
});
