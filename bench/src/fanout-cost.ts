import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { captureStep } from "./alloc-summary.js";
import { runStep, Session, split } from "./harness.js";
import type { Child } from "./ipc.js";
import { spreadText } from "./report.js";
import { getSystem, prepareSystems } from "./systems/index.js";

/**
 * Where fan-out CPU goes, per delivery, at fixed offered rates: server user and kernel time, and the receiving
 * processes' CPU, for several systems with their steps interleaved (rate 1 for each system, then rate 2, ...; then
 * again for `--rounds`), so that a noisy machine treats them alike. With `--prof DIR`, each system's step at the last
 * rate of the last round is CPU-profiled (that window only). With `--alloc DIR`, the same window's allocations are
 * sampled (objects collected again included) and summarized as bytes allocated per delivery, by function: a figure
 * that, unlike rates, hardly moves with the machine's load.
 *
 *   npm run fanout-cost -w @arqon/bench -- --systems floor,arqon-json,arqon-proto --n 1000 --rates 50000,200000,400000
 *
 * `--lean`: the subscribers read with the bench's bare frame reader instead of `ws` (src/lean.ts), so the figures
 * show each server's own ceiling (floor and ArqonBus; Socket.IO's lean client is the `socketio-raw` system).
 *
 * `--pattern`: the room is `fan.1`, and each ArqonBus system runs twice, its subscribers once on the room itself and
 * once on the wildcard `fan.*` (`<system>+pattern`): the cost of wildcard subscribers per delivery, same run.
 */
const { values: args } = parseArgs({
  options: {
    systems: { type: "string", default: "floor,arqon-json,arqon-proto" },
    n: { type: "string", default: "1000" },
    rates: { type: "string", default: "50000,200000,400000" },
    rounds: { type: "string", default: "2" },
    "step-ms": { type: "string", default: "3000" },
    prof: { type: "string" },
    alloc: { type: "string" },
    /** Subscribers read with the bare frame reader (src/lean.ts): the servers' own ceiling. */
    lean: { type: "boolean", default: false },
    /** Each ArqonBus system also with its subscribers on the pattern `fan.*` (see above). */
    pattern: { type: "boolean", default: false },
    "prof-us": { type: "string", default: "200" },
  },
});

const n = Number(args.n);
const rates = args.rates.split(",").map(Number);
const rounds = Number(args.rounds);
const stepMs = Number(args["step-ms"]);
const secret = randomBytes(32).toString("base64url");
if (args.prof) mkdirSync(args.prof, { recursive: true });
if (args.alloc) mkdirSync(args.alloc, { recursive: true });

interface Cell {
  achieved: number[];
  keptUp: boolean[];
  serverUser: number[];
  serverKernel: number[];
  receivers: number[];
}

const room = args.pattern ? "fan.1" : "fan";
const sessions: Array<{ s: Session; pub: Child; subs: Child[]; id: string }> = [];
try {
  // A system that cannot run here (Centrifugo without Go) is left out, with its reason.
  const ready = (await prepareSystems(args.systems.split(","), (m) => console.log(m))).ready;
  const variants = ready.flatMap((id) => [
    { system: id, id, subscribeTo: room },
    ...(args.pattern && id.startsWith("arqon") ? [{ system: id, id: `${id}+pattern`, subscribeTo: "fan.*" }] : []),
  ]);
  for (const { system, id, subscribeTo } of variants) {
    const s = await Session.forTool(getSystem(system), secret);
    const subs = await s.addClients(2);
    const [pub] = await s.addClients(1);
    sessions.push({ s, pub: pub!, subs, id });
    const counts = split(n, 2);
    await s.connect(subs, counts, { from: 1 });
    await s.connect([pub!], [1], { from: 0 });
    await Promise.all(subs.map((c, i) => s.subscribe(c, new Array<string>(counts[i]!).fill(subscribeTo))));
    await pub!.call("setPlan", { entries: [{ conn: 0, room, deliveries: n }] });
    if (args.lean) await Promise.all(subs.map((c) => c.call("lean")));
    // Warm-up (JIT, buffers), not reported.
    await runStep(s, [pub!], subs, rates[0]!, rates[0]! / n, 1000, 4000);
  }
  const cells = new Map<string, Cell>();
  for (let r = 0; r < rounds; r++) {
    for (const rate of rates) {
      for (const { s, pub, subs, id } of sessions) {
        const last = r === rounds - 1 && rate === rates[rates.length - 1];
        const step = await captureStep(
          s.server,
          {
            profFile: last && args.prof !== undefined ? path.resolve(args.prof, `fanout-n${n}-${rate}-${id}.cpuprofile`) : undefined,
            allocFile: last && args.alloc !== undefined ? path.resolve(args.alloc, `fanout-n${n}-${rate}-${id}.heapprofile`) : undefined,
            intervalUs: Number(args["prof-us"]),
            label: `${id} at ${rate}/s offered`,
            per: "delivery",
          },
          (st) => st.received,
          () => runStep(s, [pub], subs, rate, rate / n, stepMs, Math.max(2000, 2 * stepMs)),
        );
        const key = `${id}@${rate}`;
        const c = cells.get(key) ?? { achieved: [], keptUp: [], serverUser: [], serverKernel: [], receivers: [] };
        c.achieved.push(step.achieved);
        c.keptUp.push(step.keptUp);
        c.serverUser.push(step.serverUserUsPerDelivery);
        c.serverKernel.push(step.serverCpuUsPerDelivery - step.serverUserUsPerDelivery);
        c.receivers.push(step.receiverCpuUsPerDelivery);
        cells.set(key, c);
      }
    }
  }
  console.log(`\nfan-out to ${n} ${args.lean ? "lean " : ""}subscribers, ${rounds} round(s) of ${stepMs} ms steps; µs per delivery, median (min-max)`);
  console.log("| offered /s | system | achieved /s | kept up | server user | server kernel | receivers |");
  console.log("|---:|---|---:|---|---:|---:|---:|");
  for (const rate of rates) {
    for (const { id } of sessions) {
      const c = cells.get(`${id}@${rate}`)!;
      console.log(
        `| ${rate} | ${id} | ${spreadText(c.achieved, 0)} | ${c.keptUp.filter(Boolean).length}/${c.keptUp.length} | ${spreadText(c.serverUser)} | ${spreadText(c.serverKernel)} | ${spreadText(c.receivers)} |`,
      );
    }
  }
} finally {
  await Promise.all(sessions.map(({ s }) => s.stop()));
}
