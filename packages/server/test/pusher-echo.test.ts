import { afterEach, describe, expect, it } from "vitest";
import Echo from "laravel-echo";
import Pusher from "pusher-js";
import type { TestGateway } from "../src/testing.js";
import { APPS, authEndpoint, pusherServer, startPusherGateway } from "./pusher-helpers.js";

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
    const endpoint = await authEndpoint(sdk, {
      deny: (_channel, headers) => {
        headersSeen.push(String(headers.authorization));
        return headers.authorization !== "Bearer user-token";
      },
    });
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
    expect(headersSeen.at(-1)).toBe("Bearer stolen");
  });

  it("pusher - Echo joins a presence channel: here / joining / leaving with the user_info the endpoint gave; whispers carry the sender", async () => {
    gw = await startPusherGateway();
    const sdk = pusherServer(gw, APPS.acme);
    // The endpoint maps the bearer token to the user, as a Laravel app maps its session.
    const users = new Map([
      ["Bearer t-ann", "ann"],
      ["Bearer t-ben", "ben"],
    ]);
    const endpoint = await authEndpoint(sdk, {
      presence: (_socketId, headers) => {
        const user = users.get(String(headers.authorization)) ?? "nobody";
        return { user_id: user, user_info: { name: user } };
      },
    });
    cleanups.push(() => new Promise<void>((resolve) => endpoint.server.close(() => resolve())));
    const ann = echoFor(gw.port, endpoint.url, "t-ann");
    const annRoom = ann.join("chat");
    const here = await first<Array<{ name: string }>>((cb) => annRoom.here(cb));
    expect(here).toEqual([{ name: "ann" }]);
    const joining = first<{ name: string }>((cb) => annRoom.joining(cb));
    const ben = echoFor(gw.port, endpoint.url, "t-ben");
    const benRoom = ben.join("chat");
    const benHere = await first<Array<{ name: string }>>((cb) => benRoom.here(cb));
    expect(benHere.map((u) => u.name).sort()).toEqual(["ann", "ben"]);
    expect(await joining).toEqual({ name: "ben" });

    // A whisper on a presence channel carries the sender's user_id (pusher-js hands it over as metadata).
    const whisper = new Promise<{ data: unknown; userId: string }>((resolve) => {
      ann.connector.pusher.channel("presence-chat").bind("client-typing", (data: unknown, meta: { user_id: string }) => resolve({ data, userId: meta.user_id }));
    });
    benRoom.whisper("typing", { on: true });
    expect(await whisper).toEqual({ data: { on: true }, userId: "ben" });

    const leaving = first<{ name: string }>((cb) => annRoom.leaving(cb));
    ben.leave("chat");
    expect(await leaving).toEqual({ name: "ben" });
  });
});
