import { afterEach, describe, expect, it } from "vitest";
import { startGateway } from "@arqon/server/testing";
import { ArqonClient, type RoomMessage } from "@arqon/sdk";
import { startHelloBot, type HelloBot } from "../src/bot.js";

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

describe("hello bot", () => {
  it("bot - answers hello to its sender and ignores other messages", async () => {
    const gw = await startGateway();
    cleanup.push(() => gw.close());
    const bot: HelloBot = await startHelloBot({ url: gw.url, token: await gw.token({ sub: "hello-bot" }), room: "lobby" });
    cleanup.push(() => bot.stop());
    const alice = new ArqonClient(gw.url, { token: await gw.token({ sub: "alice" }) });
    cleanup.push(() => alice.close());
    await alice.connect();
    const got: RoomMessage[] = [];
    const room = alice.room("lobby");
    await room.subscribe((m) => got.push(m));
    expect((await room.presence.members()).map((m) => m.userId).sort()).toEqual(["alice", "hello-bot"]);
    await room.publish({ text: "the weather is nice" });
    await room.publish({ text: "Hello everyone" });
    const deadline = Date.now() + 3000;
    while (got.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await alice.ping();
    expect(got.map((m) => [m.sender, m.payload])).toEqual([["hello-bot", { text: "hello, alice!", from: "hello-bot" }]]);
  });
});
