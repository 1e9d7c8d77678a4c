import { afterEach, describe, expect, it } from "vitest";
import Echo from "laravel-echo";
import Pusher from "pusher-js";
import type { TestGateway } from "../src/testing.js";
import { APPS, authEndpoint, pusherServer, sleep, startPusherGateway } from "./pusher-helpers.js";

let gw: TestGateway | undefined;
const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await gw?.close();
  gw = undefined;
});

function echoFor(port: number, authUrl: string, bearerToken: string): Echo<"pusher"> {
  const echo = new Echo({
    broadcaster: "pusher",
    key: APPS.acme.key,
    cluster: "mt1",
    wsHost: "127.0.0.1",
    wsPort: port,
    forceTLS: false,
    enabledTransports: ["ws"],
    authEndpoint: authUrl,
    bearerToken,
    Pusher,
  });
  cleanups.push(() => echo.disconnect());
  return echo;
}

/** Resolves with the first value `register` hands to its callback (bounded). */
function first<T>(register: (cb: (value: T) => void) => unknown, ms = 3000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("timed out")), ms);
    register((value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

describe("Laravel Echo (pusher connector)", () => {
  it("pusher - Echo subscribes to a private channel through an auth endpoint served by the test, receives a broadcast and whispers", async () => {
    gw = await startPusherGateway();
    const sdk = pusherServer(gw, APPS.acme);
    const headersSeen: string[] = [];
    // The application's /broadcasting/auth: only a request with the app's bearer token gets a signature.
    const endpoint = await authEndpoint(sdk, { deny: () => headersSeen.at(-1) !== "Bearer user-token" });
    endpoint.server.prependListener("request", (req) => headersSeen.push(String(req.headers.authorization)));
    cleanups.push(() => new Promise<void>((resolve) => endpoint.server.close(() => resolve())));

    const alice = echoFor(gw.port, endpoint.url, "user-token");
    const bob = echoFor(gw.port, endpoint.url, "user-token");
    const aliceOrders = alice.private("orders.1");
    const bobOrders = bob.private("orders.1");
    await Promise.all([first((cb) => aliceOrders.subscribed(cb)), first((cb) => bobOrders.subscribed(cb))]);
    expect(endpoint.calls.map((c) => c.channel)).toEqual(["private-orders.1", "private-orders.1"]);
    expect(headersSeen).toEqual(["Bearer user-token", "Bearer user-token"]);

    // A Laravel broadcast: the event class name, namespaced the way Echo formats it.
    const shipped = first<{ order: { id: number } }>((cb) => aliceOrders.listen("OrderShipped", cb));
    await sdk.trigger("private-orders.1", "App\\Events\\OrderShipped", { order: { id: 1 } });
    expect(await shipped).toEqual({ order: { id: 1 } });

    // whisper is a client event (client-typing) on the private channel.
    const typing = first<{ name: string }>((cb) => bobOrders.listenForWhisper("typing", cb));
    aliceOrders.whisper("typing", { name: "alice" });
    expect(await typing).toEqual({ name: "alice" });

    // Without the app's token the endpoint says no and Echo reports the channel error.
    const mallory = echoFor(gw.port, endpoint.url, "stolen");
    const failed = first<{ status: number }>((cb) => mallory.private("orders.1").error(cb));
    expect((await failed).status).toBe(403);
    await sleep(50);
  });
});
