import { parseArgs } from "node:util";
import { decodeFrame } from "@arqon/core";
import { makePayload } from "./payload.js";
import { spreadText } from "./report.js";

/**
 * The cost of decoding one JSON `publish` frame in-process, as the gateway does, for the shapes a payload can take
 * through `decodeJson`:
 *
 * - `pass-through`: the bench clients' frame with its WebSocket bytes (`source`), so the payload is a view of them;
 * - `text-only`: the same text without the bytes (the SSE send path), so the payload's span is UTF-8 encoded;
 * - `re-serialised`: the same frame with one space after a comma, which takes the safe path (the payload parsed,
 *   then `JSON.stringify` and encoded), the cost every publish paid before the pass-through.
 *
 * Rounds are interleaved across variants; each reports ns per decode (median and spread over rounds).
 *
 *   node --conditions=arqon-source --import tsx src/decode-cost.ts --frames 300000 --rounds 7
 */
const { values: args } = parseArgs({
  options: {
    frames: { type: "string", default: "300000" },
    rounds: { type: "string", default: "7" },
  },
});

const n = Number(args.frames);
const rounds = Number(args.rounds);

// 65,536 distinct frames, as the bench clients send them (the rooms workload's room names, payloads stamped as they
// are made), so that no cache of V8's (numbers and their strings) holds the answers a live stream would not.
const DISTINCT = 1 << 16;
const texts = Array.from({ length: DISTINCT }, (_, i) => `{"type":"publish","room":${JSON.stringify(`room-${i % 300}`)},"payload":${makePayload(i)}}`);
const payloadBytes = texts.map((text) => Buffer.byteLength(text.slice(text.indexOf(',"payload":') + 11, -1)));
const [fewest, most] = [Math.min(...payloadBytes), Math.max(...payloadBytes)];
const payloadRange = fewest === most ? `${fewest}` : `${fewest}-${most}`;
const variants: Record<string, Array<{ text: string; source?: Buffer }>> = {
  "pass-through": texts.map((text) => ({ text, source: Buffer.from(text, "utf8") })),
  "text-only": texts.map((text) => ({ text })),
  "re-serialised": texts.map((text) => ({ text: text.replace(',"payload"', ', "payload"') })),
};

let sink = 0;
function round(frames: Array<{ text: string; source?: Buffer }>): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const f = frames[i & (DISTINCT - 1)]!;
    const result = decodeFrame(f.text, { from: "client", source: f.source });
    if (!result.ok) throw result.error;
    sink += (result.frame as { payload?: Uint8Array }).payload!.length;
  }
  return Number(process.hrtime.bigint() - start) / n;
}

const samples: Record<string, number[]> = {};
for (const name of Object.keys(variants)) {
  round(variants[name]!); // warm up
  samples[name] = [];
}
for (let r = 0; r < rounds; r++) for (const name of Object.keys(variants)) samples[name]!.push(round(variants[name]!));

console.log(`JSON publish decode, ${n} frames x ${rounds} rounds (payload ${payloadRange} bytes); ns per frame`);
console.log("| variant | ns per decode, median (min-max) | vs re-serialised |");
console.log("|---|---:|---:|");
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const base = median(samples["re-serialised"]!);
for (const [name, xs] of Object.entries(samples)) {
  console.log(`| ${name} | ${spreadText(xs, 0)} | ${(median(xs) / base).toFixed(2)}x |`);
}
if (sink < 0) console.log(sink);
