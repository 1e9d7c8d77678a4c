import { afterAll, beforeAll } from "vitest";
import { connectNatsBackends, type NatsBackends } from "@arqon/nats";
import { startNatsServer, type NatsServerHandle } from "@arqon/nats/testing";
import { startGateway, type StartGatewayOptions, type TestGateway } from "@arqon/server/testing";

/**
 * Two gateways (`a`, `b`) sharing one real nats-server, for the tests of a describe block: started before its first
 * test (before the block's own beforeAll hooks, which are registered after this call), closed after its last.
 */
export function gatewayPair(options: StartGatewayOptions): {
  readonly a: TestGateway;
  readonly b: TestGateway;
  /** Starts one more gateway on the same nats-server (closed with the others unless the test closes it). */
  node(name: string): Promise<TestGateway>;
} {
  let nats: NatsServerHandle | undefined;
  const backends: NatsBackends[] = [];
  const nodes: TestGateway[] = [];
  async function node(name: string): Promise<TestGateway> {
    const nb = await connectNatsBackends({ servers: nats!.url, name });
    backends.push(nb);
    const gw = await startGateway({ ...options, ...nb });
    nodes.push(gw);
    return gw;
  }
  beforeAll(async () => {
    nats = await startNatsServer();
    await node("api-a");
    await node("api-b");
  });
  afterAll(async () => {
    for (const gw of nodes) await gw.close();
    for (const nb of backends) await nb.close();
    await nats?.stop();
  });
  return {
    node,
    get a() {
      return nodes[0]!;
    },
    get b() {
      return nodes[1]!;
    },
  };
}
