import { afterEach, expect, it } from "vitest";
import Pusher from "pusher-js";
import PusherServer from "pusher";
import { describeWithNats } from "@arqon/nats/testing";
import { ArqonClient, type RoomMessage } from "@arqon/sdk";
import type { PusherAppOptions } from "@arqon/server";
import type { TestGateway } from "@arqon/server/testing";
import { gatewayPair } from "./helpers/gateway-pair.js";

const APP: PusherAppOptions = { tenant: "acme", appId: "1001", key: "acme-key", secret: "acme-secret-0123456789", clientEvents: true };

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

function pusherJs(gw: TestGateway, options: Record<string, unknown> = {}): Pusher {
  const p = new Pusher(APP.key, { cluster: "mt1", wsHost: "127.0.0.1", wsPort: gw.port, forceTLS: false, enabledTransports: ["ws"], ...options });
  cleanup.push(() => p.disconnect());
  return p;
}

function sdkFor(gw: TestGateway): PusherServer {
  return new PusherServer({ appId: APP.appId, key: APP.key, secret: APP.secret, host: "127.0.0.1", port: String(gw.port), useTLS: false });
}

/** Resolves with the first `event` a pusher-js channel emits (bounded). */
function once<T>(target: { bind(e: string, cb: (d: T) => void): unknown }, event: string, ms = 5000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${event}`)), ms);
    target.bind(event, (d: T) => {
      clearTimeout(timer);
      resolve(d);
    });
  });
}

/** Resolves when `predicate` holds for a message the handler list got (bounded). */
async function until<T>(list: T[], predicate: (item: T) => boolean, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (let i = 0; i < 500 && Date.now() < end; i++) {
    const hit = list.find(predicate);
    if (hit !== undefined) return hit;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error("timed out");
}

/**
 * A channel auth "endpoint" in-process: what an application's endpoint answers (the official SDK signs it), given to
 * pusher-js as its channel authorizer.
 */
function authorizer(sdk: PusherServer, user?: string) {
  return {
    customHandler: (params: { socketId: string; channelName: string }, callback: (err: Error | null, auth: unknown) => void) => {
      const presence = params.channelName.startsWith("presence-") ? { user_id: user ?? "nobody", user_info: { name: user } } : undefined;
      callback(null, presence ? sdk.authorizeChannel(params.socketId, params.channelName, presence) : sdk.authorizeChannel(params.socketId, params.channelName));
    },
  };
}

describeWithNats("Pusher protocol mode across a NATS cluster, with the native @arqon/sdk", () => {
  // One secret for both nodes: the control plane's key (terminate_connections crosses nodes) derives from it.
  const pair = gatewayPair({ secret: "pusher-cluster-test-secret-0123456789", pusher: { apps: [APP] } });

  it("pusher cluster - pusher-js on node A and @arqon/sdk on node B share a room both ways; the pusher SDK publishes on B", async () => {
    const p = pusherJs(pair.a);
    const channel = p.subscribe("orders");
    await once(channel, "pusher:subscription_succeeded");
    const native = new ArqonClient(pair.b.url, { token: await pair.b.token({ sub: "bob", tenant: "acme" }) });
    cleanup.push(() => native.close());
    await native.connect();
    const got: RoomMessage[] = [];
    const room = native.room("orders");
    await room.subscribe((m) => got.push(m));

    const created = once<{ id: number }>(channel, "created");
    await room.publish({ id: 1 }, { headers: { event: "created" } });
    expect(await created).toEqual({ id: 1 });

    const paid = once<{ total: number }>(channel, "paid");
    await sdkFor(pair.b).trigger("orders", "paid", { total: 9 });
    expect(await paid).toEqual({ total: 9 });
    const fromApi = await until(got, (m) => m.headers.event === "paid");
    expect(fromApi.payload).toEqual({ total: 9 });
    expect(fromApi.sender).toBe("pusher-api");
    const page = await room.history();
    expect(page.messages.map((m) => m.headers.event)).toEqual(["created", "paid"]);
  });

  it("pusher cluster - presence and client events cross nodes: member_added / member_removed and client- events from A reach B", async () => {
    const sdk = sdkFor(pair.a);
    const ann = pusherJs(pair.a, { channelAuthorization: authorizer(sdk, "ann") });
    const annCh = ann.subscribe("presence-team");
    await once(annCh, "pusher:subscription_succeeded");
    const added = once<{ id: string; info: unknown }>(annCh, "pusher:member_added");
    const ben = pusherJs(pair.b, { channelAuthorization: authorizer(sdk, "ben") });
    const benCh = ben.subscribe("presence-team");
    const members = await once<{ count: number; members: Record<string, unknown> }>(benCh, "pusher:subscription_succeeded");
    expect(members.members).toEqual({ ann: { name: "ann" }, ben: { name: "ben" } });
    expect(await added).toEqual({ id: "ben", info: { name: "ben" } });

    const whisper = once<{ text: string }>(benCh, "client-hi");
    expect(annCh.trigger("client-hi", { text: "from A" })).toBe(true);
    expect(await whisper).toEqual({ text: "from A" });

    const removed = once<{ id: string }>(annCh, "pusher:member_removed");
    ben.disconnect();
    expect((await removed).id).toBe("ben");
  });

  it("pusher cluster - sendToUser on node B reaches a user signed in on node A; terminate_connections on B closes it on A", async () => {
    const sdkB = sdkFor(pair.b);
    const sdkA = sdkFor(pair.a);
    const p = pusherJs(pair.a, {
      userAuthentication: {
        customHandler: (params: { socketId: string }, callback: (err: Error | null, auth: unknown) => void) => callback(null, sdkA.authenticateUser(params.socketId, { id: "u-42" })),
      },
    });
    p.signin();
    for (let i = 0; i < 250 && !(p.user as unknown as { serverToUserChannel?: { subscribed: boolean } }).serverToUserChannel?.subscribed; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const notice = once<{ n: number }>(p.user, "notice");
    await sdkB.sendToUser("u-42", "notice", { n: 1 });
    expect(await notice).toEqual({ n: 1 });
    const closed = once<{ data?: { code: number }; error?: { data: { code: number } } }>(p.connection, "error");
    await sdkB.terminateUserConnections("u-42");
    const e = await closed;
    expect(e.data?.code ?? e.error?.data.code).toBe(4009);
  });
});
