import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { sleep } from "./clock.js";
import { Session, split } from "./harness.js";
import { spreadText } from "./report.js";
import { getSystem, prepareSystems } from "./systems/index.js";

/**
 * Server CPU per handshake in the steady state, for comparing two builds or two systems on a noisy machine: every
 * system gets a warm-up, then rounds of `--count` handshakes interleaved across systems (round 1 of each, then round
 * 2 of each, ...), each round's server CPU (user and kernel) read for the handshakes alone, then for closing them.
 * With `--prof DIR`, each system's last handshake window is CPU-profiled (the window only, via the inspector) for
 * `npm run prof -- --tree` / `--diff`.
 *
 *   npm run handshakes -w @arqon/bench -- --systems floor,arqon-json --count 3000 --rounds 4
 */
const { values: args } = parseArgs({
  options: {
    systems: { type: "string", default: "floor,arqon-json" },
    count: { type: "string", default: "3000" },
    rounds: { type: "string", default: "4" },
    warmup: { type: "string", default: "1500" },
    prof: { type: "string" },
    "prof-us": { type: "string", default: "100" },
  },
});

const count = Number(args.count);
const rounds = Number(args.rounds);
const warmup = Number(args.warmup);
const secret = randomBytes(32).toString("base64url");
// A system that cannot run here (Centrifugo without Go) is left out, with its reason.
const systems = (await prepareSystems(args.systems.split(","), (m) => console.log(m))).ready.map(getSystem);
if (args.prof) mkdirSync(args.prof, { recursive: true });

interface Round {
  rate: number;
  user: number;
  kernel: number;
  closeUser: number;
  closeKernel: number;
}

const sessions = await Promise.all(systems.map((system) => Session.forTool(system, secret)));
try {
  const results = new Map<string, Round[]>();
  for (const s of sessions) {
    const clients = await s.addClients(2);
    await s.connect(clients, split(warmup, 2), { from: 0, concurrency: 64 });
    await Promise.all(clients.map((c) => c.call("closeAll")));
    results.set(s.ctx.system.id, []);
  }
  await sleep(500);
  let from = warmup;
  for (let r = 0; r < rounds; r++) {
    for (const s of sessions) {
      const id = s.ctx.system.id;
      const profile = args.prof !== undefined && r === rounds - 1;
      await s.server.call("cpu");
      if (profile) await s.server.call("profile", { action: "start", intervalUs: Number(args["prof-us"]) });
      const c = await s.connect(s.clients, split(count, 2), { from, concurrency: 64 });
      from += count;
      const hs = await s.server.call<{ userMs: number; systemMs: number }>("cpu");
      if (profile) {
        const file = path.resolve(args.prof!, `handshakes-${id}.cpuprofile`);
        await s.server.call("profile", { action: "stop", file });
        console.log(`profile: ${file} (${count} handshakes)`);
      }
      await Promise.all(s.clients.map((cl) => cl.call("closeAll")));
      await sleep(500);
      const cl = await s.server.call<{ userMs: number; systemMs: number }>("cpu");
      const per = (ms: number) => (ms * 1000) / c.opened;
      results.get(id)!.push({ rate: c.ratePerSec, user: per(hs.userMs), kernel: per(hs.systemMs), closeUser: per(cl.userMs), closeKernel: per(cl.systemMs) });
    }
  }
  console.log(`\n${count} handshakes per round, ${rounds} rounds (interleaved); server CPU per handshake in µs, median (min-max)`);
  console.log("| system | handshakes/s | user | kernel | close: user | close: kernel |");
  console.log("|---|---:|---:|---:|---:|---:|");
  for (const [id, rs] of results) {
    const col = (f: (r: Round) => number) => spreadText(rs.map(f), 0);
    console.log(`| ${id} | ${col((r) => r.rate)} | ${col((r) => r.user)} | ${col((r) => r.kernel)} | ${col((r) => r.closeUser)} | ${col((r) => r.closeKernel)} |`);
  }
} finally {
  await Promise.all(sessions.map((s) => s.stop()));
}
