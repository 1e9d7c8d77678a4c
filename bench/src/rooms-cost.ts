import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { captureStep } from "./alloc-summary.js";
import { runStep, Session } from "./harness.js";
import type { Child } from "./ipc.js";
import { spreadText } from "./report.js";
import { getSystem, prepareSystems } from "./systems/index.js";

/**
 * Where the chat pattern's CPU goes, per published message, at fixed offered rates: the rooms workload's layout
 * (`--rooms` rooms of 2, 3 and 4 members in turn, every member publishing to its own room, the others receiving),
 * the server's user and kernel time and its write calls per message, for several systems with their steps
 * interleaved (rate 1 for each system, then rate 2, ...; then again for `--rounds`), so a noisy machine treats them
 * alike. `--prof DIR` CPU-profiles each system's step at the last rate of the last round; `--alloc DIR` samples that
 * window's allocations and prints bytes allocated per message by function.
 *
 *   npm run rooms-cost -w @arqon/bench -- --systems floor,arqon-json,arqon-proto --rates 10000,30000 --rounds 3
 */
const { values: args } = parseArgs({
  options: {
    systems: { type: "string", default: "floor,arqon-json,arqon-proto" },
    rooms: { type: "string", default: "300" },
    /** Offered deliveries per second (the rooms workload's unit); messages/s = rate / deliveries per message. */
    rates: { type: "string", default: "20000,60000" },
    rounds: { type: "string", default: "2" },
    "step-ms": { type: "string", default: "3000" },
    prof: { type: "string" },
    alloc: { type: "string" },
    "prof-us": { type: "string", default: "200" },
  },
});

const roomCount = Number(args.rooms);
const rates = args.rates.split(",").map(Number);
const rounds = Number(args.rounds);
const stepMs = Number(args["step-ms"]);
const secret = randomBytes(32).toString("base64url");
if (args.prof) mkdirSync(args.prof, { recursive: true });
if (args.alloc) mkdirSync(args.alloc, { recursive: true });

const sizes = Array.from({ length: roomCount }, (_, i) => 2 + (i % 3));
const members = sizes.reduce((a, b) => a + b, 0);
const perMessage = sizes.reduce((a, s) => a + s * (s - 1), 0) / members;
const PROCS = 2;

interface Cell {
  messages: number[];
  keptUp: boolean[];
  serverUser: number[];
  serverKernel: number[];
  writes: number[];
  p99: number[];
}

const sessions: Array<{ s: Session; clients: Child[] }> = [];
try {
  for (const id of (await prepareSystems(args.systems.split(","), (m) => console.log(m))).ready) {
    const s = await Session.forTool(getSystem(id), secret);
    const clients = await s.addClients(PROCS);
    const rooms: string[][] = Array.from({ length: PROCS }, () => []);
    const deliveries: number[][] = Array.from({ length: PROCS }, () => []);
    sizes.forEach((size, i) => {
      for (let m = 0; m < size; m++) {
        rooms[i % PROCS]!.push(`chat-${i}`);
        deliveries[i % PROCS]!.push(size - 1);
      }
    });
    await s.connect(clients, rooms.map((r) => r.length));
    await Promise.all(clients.map((c, i) => s.subscribe(c, rooms[i]!, deliveries[i]!)));
    sessions.push({ s, clients });
    // Warm-up (JIT, buffers), not reported.
    await runStep(s, clients, clients, rates[0]!, rates[0]! / perMessage, 1000, 4000);
  }
  const cells = new Map<string, Cell>();
  for (let r = 0; r < rounds; r++) {
    for (const rate of rates) {
      for (const { s, clients } of sessions) {
        const id = s.ctx.system.id;
        // Only the Node servers can be profiled from their process (Centrifugo: its pprof endpoint, bench/README.md).
        const last = r === rounds - 1 && rate === rates[rates.length - 1] && id !== "centrifugo";
        const step = await captureStep(
          s.server,
          {
            profFile: last && args.prof !== undefined ? path.resolve(args.prof, `rooms-${roomCount}-${rate}-${id}.cpuprofile`) : undefined,
            allocFile: last && args.alloc !== undefined ? path.resolve(args.alloc, `rooms-${roomCount}-${rate}-${id}.heapprofile`) : undefined,
            intervalUs: Number(args["prof-us"]),
            label: `${id} at ${rate}/s offered`,
            per: "message",
          },
          (st) => st.received / perMessage,
          () => runStep(s, clients, clients, rate, rate / perMessage, stepMs, Math.max(2000, 2 * stepMs)),
        );
        const key = `${id}@${rate}`;
        const c = cells.get(key) ?? { messages: [], keptUp: [], serverUser: [], serverKernel: [], writes: [], p99: [] };
        c.messages.push(step.achieved / perMessage);
        c.keptUp.push(step.keptUp);
        c.serverUser.push(step.serverUserUsPerDelivery * perMessage);
        c.serverKernel.push((step.serverCpuUsPerDelivery - step.serverUserUsPerDelivery) * perMessage);
        c.writes.push(step.serverWritesPerDelivery * perMessage);
        c.p99.push(step.latency.p99);
        cells.set(key, c);
      }
    }
  }
  console.log(
    `\n${roomCount} rooms of 2-4 (${members} members, ${perMessage.toFixed(2)} deliveries per message), ${rounds} round(s) of ${stepMs} ms steps; ` +
      "per published message, median (min-max)",
  );
  console.log("| offered deliveries/s | system | messages/s | kept up | server user µs | server kernel µs | writes | p99 ms |");
  console.log("|---:|---|---:|---|---:|---:|---:|---:|");
  for (const rate of rates) {
    for (const { s } of sessions) {
      const c = cells.get(`${s.ctx.system.id}@${rate}`)!;
      console.log(
        `| ${rate} | ${s.ctx.system.id} | ${spreadText(c.messages, 0)} | ${c.keptUp.filter(Boolean).length}/${c.keptUp.length} | ` +
          `${spreadText(c.serverUser)} | ${spreadText(c.serverKernel)} | ${spreadText(c.writes)} | ${spreadText(c.p99)} |`,
      );
    }
  }
} finally {
  await Promise.all(sessions.map(({ s }) => s.stop()));
}
