import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { jwtVerify } from "jose";
import { describe, expect, it } from "vitest";
import { sleep } from "../src/clock.js";
import { makePayload } from "../src/payload.js";
import { aggregate, headline, table, type RunResults } from "../src/report.js";
import {
  centrifugo,
  centrifugoBinary,
  centrifugoConfig,
  mintCentrifugoToken,
  readCentrifugoFrame,
  type FrameSink,
} from "../src/systems/centrifugo.js";

function sink(over: Partial<FrameSink> = {}) {
  const stamps: number[] = [];
  const replies: string[] = [];
  const s: FrameSink = {
    onTs: (ts) => stamps.push(ts),
    onReply: (line) => replies.push(line),
    wantsReplies: () => true,
    ownMark: undefined,
    ...over,
  };
  return { s, stamps, replies };
}

const push = (ts: number, client: string) =>
  `{"push":{"channel":"chat-1","pub":{"data":{"ts":${ts},"seq":1,"pad":"xx"},"info":{"user":"user-1","client":"${client}"}}}}`;

describe("readCentrifugoFrame", () => {
  it("reads every line of a merged frame: pushes, replies, a ping", () => {
    const { s, stamps, replies } = sink();
    const frame = Buffer.from([push(1.5, "a"), '{"id":3,"publish":{}}', push(2.25, "b"), "{}"].join("\n"));
    expect(readCentrifugoFrame(frame, s)).toBe(true);
    expect(stamps).toEqual([1.5, 2.25]);
    expect(replies).toEqual(['{"id":3,"publish":{}}']);
  });

  it("skips the publisher's own publications once it has published", () => {
    const { s, stamps } = sink({ ownMark: Buffer.from('"client":"me"') });
    const frame = Buffer.from([push(1, "me"), push(2, "other"), push(3, "me")].join("\n"));
    expect(readCentrifugoFrame(frame, s)).toBe(false);
    expect(stamps).toEqual([2]);
  });

  it("parses no reply while none is awaited, and answers a lone ping", () => {
    const { s, replies } = sink({ wantsReplies: () => false });
    expect(readCentrifugoFrame(Buffer.from('{"id":9,"publish":{}}'), s)).toBe(false);
    expect(replies).toEqual([]);
    expect(readCentrifugoFrame(Buffer.from("{}"), s)).toBe(true);
  });
});

describe("mintCentrifugoToken", () => {
  it("is an HS256 JWT with sub, iat and a two-hour exp", async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = mintCentrifugoToken("secret-secret-secret-secret-1234", "user-7", now);
    const { payload, protectedHeader } = await jwtVerify(token, new TextEncoder().encode("secret-secret-secret-secret-1234"), { algorithms: ["HS256"] });
    expect(protectedHeader.alg).toBe("HS256");
    expect(payload).toEqual({ sub: "user-7", iat: now, exp: now + 7200 });
  });
});

describe("report with a system that is not available", () => {
  const results: RunResults = [
    {
      floor: [{ key: "rooms.messages", label: "rooms msgs", unit: "/s", value: 1000, better: "higher" }],
      socketio: [{ key: "rooms.messages", label: "rooms msgs", unit: "/s", value: 500, better: "higher" }],
    },
  ];
  it("prints it as such in both tables", () => {
    const rows = aggregate(results, ["floor", "socketio", "centrifugo"]);
    const why = { centrifugo: "Go is not available to build it" };
    const t = table(rows, why);
    expect(t).toContain("| centrifugo | not available |");
    expect(t).toContain("centrifugo: not available: Go is not available to build it");
    expect(headline(rows, /messages$/, why)).toMatch(/\| 1\.0k \| not available \|/);
    expect(table([], why)).toContain("| centrifugo | not available |");
  });

  it("gives the other rows a vs Centrifugo ratio when it ran", () => {
    const withIt: RunResults = [{ ...results[0]!, centrifugo: [{ key: "rooms.messages", label: "rooms msgs", unit: "/s", value: 2000, better: "higher" }] }];
    const rows = aggregate(withIt, ["floor", "socketio", "centrifugo"]);
    expect(rows.find((r) => r.system === "floor")!.vsCentrifugo!.median).toBe(0.5);
    expect(table(rows)).toContain("| 0.50x |");
  });
});

/**
 * Against the real server, when the bench has built it (npm run bench -- --systems centrifugo); skipped otherwise,
 * unless ARQON_REQUIRE_CENTRIFUGO=1, which makes a missing binary a failure.
 */
const haveCentrifugo = existsSync(centrifugoBinary());
if (!haveCentrifugo && process.env.ARQON_REQUIRE_CENTRIFUGO === "1") {
  it("has the Centrifugo binary (ARQON_REQUIRE_CENTRIFUGO=1)", () => {
    throw new Error(`ARQON_REQUIRE_CENTRIFUGO=1 but ${centrifugoBinary()} is not built (npm run bench -- --systems centrifugo builds it)`);
  });
}
describe.skipIf(!haveCentrifugo)("centrifugo server and clients", () => {
  it("takes its config in strict mode", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "cf-config-"));
    try {
      const file = path.join(dir, "config.json");
      writeFileSync(file, JSON.stringify(centrifugoConfig("s".repeat(32), 18000)));
      const r = spawnSync(centrifugoBinary(), ["checkconfig", "--strict", "--config", file], { encoding: "utf8" });
      expect(`${r.stdout}${r.stderr}`.trim()).toBe("");
      expect(r.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("delivers a room's publications to the other members only, and stops by its PID", async () => {
    const secret = "t".repeat(32);
    const server = await centrifugo.startServer({ secret });
    try {
      expect(server.pid).toBeGreaterThan(0);
      const factory = await centrifugo.createClientFactory({ port: server.port, secret });
      await factory.prepare(0, 3);
      const got: number[][] = [[], [], []];
      const conns = await Promise.all([0, 1, 2].map((i) => factory.connect(i, { onTs: (ts) => got[i]!.push(ts) })));
      await conns[0]!.subscribe("chat-1");
      await conns[1]!.subscribe("chat-1");
      await conns[2]!.subscribe("chat-2");
      const p1 = makePayload(1);
      const p2 = makePayload(2);
      conns[0]!.publish("chat-1", p1);
      conns[1]!.publish("chat-1", p2);
      for (let i = 0; i < 100 && (got[0]!.length < 1 || got[1]!.length < 1); i++) await sleep(20);
      await sleep(100);
      const ts = (p: string) => Number(/"ts":([\d.]+)/.exec(p)![1]);
      expect(got[0]).toEqual([ts(p2)]);
      expect(got[1]).toEqual([ts(p1)]);
      expect(got[2]).toEqual([]);
      const mem = await server.memory!();
      expect(mem.rss).toBeGreaterThan(1 << 20);
      expect(mem.heapUsed).toBeGreaterThan(0);
      for (const c of conns) c.close();
    } finally {
      await server.close();
    }
    expect(existsSync(`/proc/${server.pid}`)).toBe(false);
  }, 30_000);
});
