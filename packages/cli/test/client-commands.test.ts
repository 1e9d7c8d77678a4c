import { afterEach, describe, expect, it } from "vitest";
import { CliSession } from "../src/session.js";
import { startGateway, type TestGateway } from "@arqon/server/testing";
import { run } from "../src/index.js";

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l) } };
}

async function until(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("cli - client commands against a real gateway", () => {
  it("status - prints the gateway's /status with the operator key", async () => {
    const key = "client-commands-operator-key-0123456789";
    gw = await startGateway({ operatorKeys: [key] });
    const c = capture();
    expect(await run(["status", "--url", gw.url, "--json"], c.io, { env: { ARQON_OPERATOR_KEY: key } })).toBe(0);
    const status = JSON.parse(c.out[0]!);
    expect(status).toHaveProperty("connections");
    expect(status.uptimeMs).toBeGreaterThanOrEqual(0);
  });

  it("status - an unreachable gateway is exit 1 with a message", async () => {
    const c = capture();
    expect(await run(["status", "--url", "ws://127.0.0.1:1/ws"], c.io)).toBe(1);
    expect(c.err[0]).toMatch(/cannot reach http:\/\/127\.0\.0\.1:1/);
  });

  it("publish + tail - a message published by the CLI is printed by a tailing CLI, then missed ones are replayed", async () => {
    gw = await startGateway();
    const token = await gw.token({ sub: "cli-user" });
    const env = { ARQON_URL: gw.url, ARQON_TOKEN: token };

    const tail = capture();
    const controller = new AbortController();
    const tailing = run(["tail", "lobby", "--count", "2"], tail.io, { env, signal: controller.signal });
    await until(() => tail.err.some((l) => l.startsWith("tailing lobby")));

    const pub = capture();
    expect(await run(["publish", "lobby", '{"text":"hi"}', "--json"], pub.io, { env })).toBe(0);
    expect(JSON.parse(pub.out[0]!)).toMatchObject({ offset: 1 });
    expect(await run(["publish", "lobby", "plain words"], pub.io, { env })).toBe(0);
    expect(await tailing).toBe(0);
    expect(tail.out).toHaveLength(2);
    expect(tail.out[0]).toMatch(/^#1 .* cli-user: \{"text":"hi"\}$/);
    expect(tail.out[1]).toMatch(/^#2 .* cli-user: "plain words"$/);

    // Replay from a known position: only what came after offset 1.
    const epoch = JSON.parse(pub.out[0]!).epoch as string;
    const replay = capture();
    expect(await run(["tail", "lobby", "--since", "1", "--epoch", epoch, "--count", "1"], replay.io, { env })).toBe(0);
    expect(replay.out).toEqual([expect.stringMatching(/^#2 .*"plain words"$/)]);
  });

  it("tail --json - speaks protocol 1.1 and still prints whole messages: epoch, headers, sender, timestamp", async () => {
    gw = await startGateway();
    const token = await gw.token({ sub: "cli-user" });
    const env = { ARQON_URL: gw.url, ARQON_TOKEN: token };
    const pub = capture();
    expect(await run(["publish", "lobby", '{"n":1}', "--json"], pub.io, { env })).toBe(0);
    expect(await run(["publish", "lobby", '{"n":2}', "--json"], pub.io, { env })).toBe(0);
    const acks = pub.out.map((l) => JSON.parse(l) as { offset: number; epoch: string });
    const replay = capture();
    expect(await run(["tail", "lobby", "--since", "0", "--epoch", acks[0]!.epoch, "--count", "2", "--json"], replay.io, { env })).toBe(0);
    const printed = replay.out.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(printed).toHaveLength(2);
    for (const [i, m] of printed.entries()) {
      expect(m).toMatchObject({ type: "message", room: "lobby", offset: i + 1, epoch: acks[0]!.epoch, sender: "cli-user", payload: { n: i + 1 } });
      expect(m.headers).toEqual({ "x-timestamp": String(m.timestamp), "x-twist-id": "main" });
    }
    const { session, welcome } = await CliSession.connect(gw.url, token);
    expect(welcome.protocol).toBe("1.1");
    await session.close();
  });

  it("publish - a refused token is reported with the server's code", async () => {
    gw = await startGateway();
    const c = capture();
    expect(await run(["publish", "lobby", "1", "--url", gw.url, "--token", "not-a-jwt"], c.io)).toBe(1);
    expect(c.err[0]).toMatch(/HTTP 401 ARQ_AUTH_/);
  });

  it("publish - missing arguments print usage and exit 2", async () => {
    const c = capture();
    expect(await run(["publish", "lobby"], c.io)).toBe(2);
    expect(c.err[0]).toMatch(/^usage: arqon publish/);
  });
});
