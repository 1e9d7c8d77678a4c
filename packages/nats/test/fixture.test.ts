import { existsSync } from "node:fs";
import { expect, it } from "vitest";
import { connect } from "@nats-io/transport-node";
import { describeWithNats, natsServerVersion, startNatsServer } from "@arqon/nats/testing";

describeWithNats("startNatsServer fixture", () => {
  it("fixture - starts on a free loopback port, restarts on the same port and store, kill is SIGKILL, stop cleans up", async () => {
    expect(natsServerVersion()).toMatch(/^nats-server: v2\./);
    const nats = await startNatsServer();
    try {
      expect(nats.url).toMatch(/^nats:\/\/127\.0\.0\.1:\d+$/);
      const firstPid = nats.pid;
      expect(firstPid).toBeGreaterThan(0);
      const nc = await connect({ servers: nats.url });
      expect(nc.info?.jetstream).toBe(true);
      await nc.close();

      const port = nats.port;
      await nats.restart();
      expect(nats.port).toBe(port);
      expect(nats.pid).not.toBe(firstPid);

      await nats.kill();
      expect(nats.pid).toBeUndefined();
      await expect(connect({ servers: nats.url, reconnect: false })).rejects.toThrow();
      await nats.start();
      expect(nats.port).toBe(port);
      const again = await connect({ servers: nats.url });
      await again.close();
      expect(existsSync(nats.storeDir)).toBe(true);
    } finally {
      await nats.stop();
    }
    expect(existsSync(nats.storeDir)).toBe(false);
    expect(nats.pid).toBeUndefined();
  }, 30_000);
});
