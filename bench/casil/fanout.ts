/**
 * A rough fan-out comparison on one gateway in this process: one publisher, S subscribers in a room, N messages of
 * 1 KB; messages per second until every subscriber has every message, with CASIL off and with the default policies
 * (enforce). Runs alternate to spread machine noise. The main bench harness does the careful cross-process version.
 *
 *   node --conditions=arqon-source --import tsx bench/casil/fanout.ts [--subscribers 10] [--messages 2000] [--rounds 3]
 */
import { parseArgs } from "node:util";
import { allowAll, createCasilEngine, type Inspector } from "@arqon/core";
import { startGateway } from "@arqon/server/testing";

const { values } = parseArgs({ options: { subscribers: { type: "string", default: "10" }, messages: { type: "string", default: "2000" }, rounds: { type: "string", default: "3" } } });
const S = Number(values.subscribers);
const N = Number(values.messages);
const ROUNDS = Number(values.rounds);
const text = "The quick brown fox jumps over the lazy dog. ".repeat(22).slice(0, 960);

async function run(inspector: Inspector): Promise<number> {
  const gw = await startGateway({ inspector, limits: { publishRatePerSecond: 1e9, publishBurst: 1e9 } });
  try {
    const pub = await gw.client({ sub: "pub" });
    const subs = await Promise.all(Array.from({ length: S }, (_, i) => gw.client({ sub: `s${i}` })));
    await Promise.all(subs.map((s) => s.subscribe("room")));
    let received = 0;
    const done = new Promise<void>((resolve) => {
      for (const s of subs) {
        s.ws.on("message", () => {
          if (++received === S * N) resolve();
        });
      }
    });
    let errors = 0;
    pub.ws.on("message", (data: Buffer) => {
      if (data.includes('"type":"error"')) errors++;
    });
    const t0 = performance.now();
    // A window of 200 messages in flight keeps subscribers in this process from being closed as slow consumers.
    for (let i = 0; i < N; i++) {
      pub.send({ type: "publish", room: "room", payload: new TextEncoder().encode(JSON.stringify({ i, text })) });
      if (i % 100 === 99) {
        const target = S * (i + 1 - 200);
        for (let spins = 0; received < target && spins < 60_000; spins++) await new Promise((r) => setImmediate(r));
      }
    }
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => (timer = setTimeout(resolve, 60_000)));
    await Promise.race([done, timedOut]);
    clearTimeout(timer);
    if (received < S * N) {
      const closes = subs.filter((c) => c.ws.readyState !== c.ws.OPEN).length;
      throw new Error(`only ${received} of ${S * N} messages arrived within 60 s (${errors} error frames to the publisher, ${closes} subscribers closed, publisher ${pub.ws.readyState === pub.ws.OPEN ? "open" : "closed"})`);
    }
    return (N / (performance.now() - t0)) * 1000;
  } finally {
    await gw.close();
  }
}

const configs: Array<[string, () => Inspector]> = [
  ["off", () => allowAll],
  ["default (enforce)", () => createCasilEngine({ policy: { mode: "enforce" } })],
];
export const results = new Map<string, number[]>();
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, make] of configs) {
    const rate = await run(make());
    results.set(name, [...(results.get(name) ?? []), rate]);
  }
}
console.log(`fan-out: 1 publisher, ${S} subscribers, ${N} messages of ~1 KB, ${ROUNDS} rounds (messages/s, best and median)`);
for (const [name, rates] of results) {
  const sorted = [...rates].sort((a, b) => a - b);
  console.log(`${name.padEnd(20)} best ${Math.max(...rates).toFixed(0).padStart(8)}  median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(0).padStart(8)}`);
}
