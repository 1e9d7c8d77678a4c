import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { startGateway } from "@arqon/server/testing";
import { ArqonClient, ArqonRequestError } from "../src/index.js";
import "../src/protobuf.js";

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** A real application backend on 127.0.0.1 answering the rpc hook. */
async function appBackend(): Promise<string> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const event = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { method: string; data: unknown; user: string };
      const answer = event.method === "nope" ? { deny: { reason: "not_allowed" } } : event.method === "slow" ? null : { data: { got: event.data, user: event.user } };
      if (answer === null) return void setTimeout(() => res.end("{}"), 500);
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answer));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  cleanup.push(() => new Promise<void>((r) => server.close(() => r())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/rpc`;
}

describe("client.rpc", () => {
  it("rpc - round trip through the server's rpc proxy hook, in JSON and protobuf; denials reject with their code", async () => {
    const url = await appBackend();
    const gw = await startGateway({ outbound: { allow: ["127.0.0.1"], allowHttp: true }, proxy: { secret: `whsec_${randomBytes(24).toString("base64")}`, rpc: url } });
    cleanup.push(() => gw.close());
    for (const codec of ["json", "protobuf"] as const) {
      const c = new ArqonClient(gw.url, { token: await gw.token({ sub: "alice" }), codec });
      cleanup.push(() => c.close());
      await c.connect();
      expect(await c.rpc("profile.get", { id: 7 })).toEqual({ got: { id: 7 }, user: "alice" });
      expect(await c.rpc("profile.get")).toEqual({ got: null, user: "alice" });
      const denied = await c.rpc("nope").catch((e: unknown) => e);
      expect(denied).toBeInstanceOf(ArqonRequestError);
      expect(denied).toMatchObject({ code: "ARQ_PROXY_DENIED", message: "denied by the application backend: not_allowed" });
      const timedOut = await c.rpc("slow", undefined, { timeoutMs: 100 }).catch((e: unknown) => e);
      expect(timedOut).toMatchObject({ code: "ARQ_REQUEST_TIMEOUT" });
    }
  });

  it("rpc - a server without an rpc hook answers ARQ_FEATURE_DISABLED", async () => {
    const gw = await startGateway();
    cleanup.push(() => gw.close());
    const c = new ArqonClient(gw.url, { token: await gw.token({ sub: "alice" }) });
    cleanup.push(() => c.close());
    await c.connect();
    await expect(c.rpc("profile.get", {})).rejects.toMatchObject({ code: "ARQ_FEATURE_DISABLED" });
  });
});
