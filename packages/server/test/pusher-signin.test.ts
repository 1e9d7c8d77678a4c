import { afterEach, describe, expect, it } from "vitest";
import type Pusher from "pusher-js";
import { ErrorCode } from "@arqon/core";
import type { TestGateway } from "../src/testing.js";
import { APPS, RawPusher, connected, hmac, once, pusherClient, pusherServer, record, sleep, startPusherGateway } from "./pusher-helpers.js";

let gw: TestGateway | undefined;
const clients: Pusher[] = [];
const raws: RawPusher[] = [];

afterEach(async () => {
  for (const p of clients.splice(0)) p.disconnect();
  for (const r of raws.splice(0)) r.ws.terminate();
  await gw?.close();
  gw = undefined;
});

/** pusher-js with a user authenticator as an application's /pusher/user-auth would answer (signed by the SDK). */
function signedInClient(g: TestGateway, user: string, secret = APPS.acme.secret): Pusher {
  const sdk = pusherServer(g, { ...APPS.acme, secret });
  const p = pusherClient(g, APPS.acme, {
    userAuthentication: {
      customHandler: (params: { socketId: string }, callback: (err: Error | null, auth: unknown) => void) =>
        callback(null, sdk.authenticateUser(params.socketId, { id: user, user_info: { name: user } })),
    },
  });
  clients.push(p);
  return p;
}

describe("Pusher user authentication (pusher:signin)", () => {
  it("pusher - pusher-js signs in, receives sendToUser events on its #server-to-user channel (all its connections), and terminate_connections closes them", async () => {
    gw = await startPusherGateway();
    const sdk = pusherServer(gw, APPS.acme);
    const u1a = signedInClient(gw, "u1");
    const u1b = signedInClient(gw, "u1");
    const u2 = signedInClient(gw, "u2");
    for (const p of [u1a, u1b, u2]) {
      p.signin();
      await connected(p);
    }
    // signin is done once pusher-js subscribed to its user channel.
    for (const p of [u1a, u1b, u2]) {
      for (let i = 0; i < 100 && !(p.user as unknown as { serverToUserChannel?: { subscribed: boolean } }).serverToUserChannel?.subscribed; i++) await sleep(20);
    }
    const seenU2 = record(u2.user as unknown as { bind_global(cb: (event: string, data: unknown) => void): unknown });
    const gotA = once(u1a.user, "notice");
    const gotB = once(u1b.user, "notice");
    await sdk.sendToUser("u1", "notice", { text: "for u1" });
    expect(await gotA).toEqual({ text: "for u1" });
    expect(await gotB).toEqual({ text: "for u1" });
    await sleep(100);
    expect(seenU2.filter((e) => e.event === "notice")).toEqual([]);

    const closedA = once<{ data?: { code: number }; error?: { data: { code: number } } }>(u1a.connection, "error");
    await sdk.terminateUserConnections("u1");
    const e = await closedA;
    expect(e.data?.code ?? e.error?.data.code).toBe(4009);
    await sleep(200);
    expect(u1a.connection.state).toBe("disconnected");
    expect(u1b.connection.state).toBe("disconnected");
    expect(u2.connection.state).toBe("connected");
  });

  it("pusher - a user's channel is closed to other sockets; a bad signin signature is 4009", async () => {
    gw = await startPusherGateway();
    const raw = await RawPusher.open(gw, APPS.acme.key);
    raws.push(raw);
    raw.send({ event: "pusher:subscribe", data: { channel: "#server-to-user-u1" } });
    const refused = await raw.next("pusher:subscription_error", "#server-to-user-u1");
    expect(JSON.parse(refused.data as string)).toMatchObject({ status: 403, arqon_code: ErrorCode.FORBIDDEN });

    // Signed in as u2, it still may not read u1's channel; its own works.
    const userData = JSON.stringify({ id: "u2" });
    raw.send({ event: "pusher:signin", data: { auth: `${APPS.acme.key}:${hmac(APPS.acme.secret, `${raw.socketId}::user::${userData}`)}`, user_data: userData } });
    expect(JSON.parse((await raw.next("pusher:signin_success")).data as string)).toEqual({ user_data: userData });
    raw.send({ event: "pusher:subscribe", data: { channel: "#server-to-user-u1" } });
    await raw.next("pusher:subscription_error", "#server-to-user-u1");
    raw.send({ event: "pusher:subscribe", data: { channel: "#server-to-user-u2" } });
    await raw.next("pusher_internal:subscription_succeeded", "#server-to-user-u2");
    // Client events on a user channel are refused.
    raw.send({ event: "client-x", channel: "#server-to-user-u2", data: {} });
    expect(((await raw.next("pusher:error")).data as { arqon_code: string }).arqon_code).toBe(ErrorCode.FORBIDDEN);

    const bad = await RawPusher.open(gw, APPS.acme.key);
    raws.push(bad);
    bad.send({ event: "pusher:signin", data: { auth: `${APPS.acme.key}:${"0".repeat(64)}`, user_data: userData } });
    expect(((await bad.next("pusher:error")).data as { code: number }).code).toBe(4009);
    expect((await bad.closed).code).toBe(4009);
    // pusher-js signed by a wrong secret is refused the same way and does not reconnect.
    const forged = signedInClient(gw, "u1", "not-the-secret-0123456789");
    forged.signin();
    const failed = await once<{ data?: { code: number }; error?: { data: { code: number } } }>(forged.connection, "error");
    expect(failed.data?.code ?? failed.error?.data.code).toBe(4009);
    await sleep(300);
    expect(forged.connection.state).toBe("disconnected");
  });
});
