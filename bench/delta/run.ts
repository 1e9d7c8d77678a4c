/**
 * Delta messages on a realistic ticker: 50 instruments of 20 fields each; every tick changes 1-3 fields of one
 * instrument (always the time stamp and sequence, plus prices or sizes). Streams the ticks through `DeltaEncoder`
 * (once per message, as the gateway does) and one subscriber's `DeltaCursor` + `DeltaDecoder`, checks every payload
 * is rebuilt exactly, and prints the bytes sent full vs with deltas and the encode/decode cost per message.
 *
 *   node --conditions=arqon-source --import tsx bench/delta/run.ts [--ticks 20000] [--seed 7]
 *
 * Two layouts: one room per instrument (subscribers follow a symbol; the delta is against that symbol's last tick),
 * and one room for all instruments (the delta is against a different instrument's tick). With ARQON_BENCH_OUT set,
 * the figures are also written there as JSON (the bench/README.md extras contract).
 */
import { writeFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { DeltaCursor, DeltaDecoder, DeltaEncoder } from "@arqon/core";

const { values } = parseArgs({ options: { ticks: { type: "string" }, seed: { type: "string" } } });
const ticks = Number(values.ticks ?? (process.env.ARQON_BENCH_PROFILE === "short" ? 5_000 : 20_000));
let seed = Number(values.seed ?? 7);

/** mulberry32: the same stream on every run. */
function random(): number {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

const round = (x: number, d: number) => Math.round(x * 10 ** d) / 10 ** d;

interface Instrument {
  symbol: string;
  name: string;
  exchange: string;
  currency: string;
  isin: string;
  sector: string;
  bid: number;
  ask: number;
  last: number;
  bidSize: number;
  askSize: number;
  lastSize: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  trades: number;
  seq: number;
  ts: number;
}

const SECTORS = ["technology", "energy", "financials", "health care", "industrials", "utilities"];
const instruments: Instrument[] = Array.from({ length: 50 }, (_, i) => {
  const price = round(20 + random() * 480, 2);
  return {
    symbol: `SYM${String(i).padStart(2, "0")}`,
    name: `Instrument number ${i} Holdings Inc.`,
    exchange: i % 2 ? "XNAS" : "XNYS",
    currency: "USD",
    isin: `US${String(1000000000 + i * 7919).padStart(10, "0")}`,
    sector: SECTORS[i % SECTORS.length]!,
    bid: round(price - 0.01, 2),
    ask: round(price + 0.01, 2),
    last: price,
    bidSize: 100 * (1 + Math.floor(random() * 50)),
    askSize: 100 * (1 + Math.floor(random() * 50)),
    lastSize: 100,
    open: price,
    high: price,
    low: price,
    close: price,
    volume: Math.floor(random() * 1e6),
    trades: Math.floor(random() * 1e4),
    seq: 0,
    ts: 1_767_225_600_000,
  };
});

/** One tick: seq and ts always move; 1-3 market fields change. */
function tick(clockMs: number): Instrument {
  const inst = instruments[Math.floor(random() * instruments.length)]!;
  inst.seq++;
  inst.ts = clockMs;
  const changes = 1 + Math.floor(random() * 3);
  for (let c = 0; c < changes; c++) {
    switch (Math.floor(random() * 5)) {
      case 0: {
        const last = round(inst.last * (1 + (random() - 0.5) / 500), 2);
        inst.last = last;
        inst.high = Math.max(inst.high, last);
        inst.low = Math.min(inst.low, last);
        break;
      }
      case 1:
        inst.bid = round(inst.last - 0.01 * (1 + Math.floor(random() * 3)), 2);
        break;
      case 2:
        inst.ask = round(inst.last + 0.01 * (1 + Math.floor(random() * 3)), 2);
        break;
      case 3:
        inst.bidSize = 100 * (1 + Math.floor(random() * 50));
        break;
      default:
        inst.volume += 100 * (1 + Math.floor(random() * 20));
        inst.trades++;
    }
  }
  return inst;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

interface Result {
  layout: string;
  messages: number;
  fullBytes: number;
  sentBytes: number;
  deltas: number;
  encodeUs: number;
  decodeUs: number;
  avgFull: number;
}

function run(layout: "per-instrument" | "one-room"): Result {
  const stream: { room: string; payload: Uint8Array; text: string }[] = [];
  let clockMs = 1_767_225_600_000;
  for (let i = 0; i < ticks; i++) {
    clockMs += 1 + Math.floor(random() * 20);
    const inst = tick(clockMs);
    const text = JSON.stringify(inst);
    stream.push({ room: layout === "one-room" ? "acme.ticker" : `acme.ticker:${inst.symbol}`, payload: enc.encode(text), text });
  }
  const encoder = new DeltaEncoder();
  const cursors = new Map<string, DeltaCursor>();
  const decoder = new DeltaDecoder();
  let fullBytes = 0;
  let sentBytes = 0;
  let deltas = 0;
  let encodeMs = 0;
  let decodeMs = 0;
  for (const { room, payload, text } of stream) {
    const t0 = performance.now();
    const encoding = encoder.encode(room, payload);
    encodeMs += performance.now() - t0;
    let cursor = cursors.get(room);
    if (cursor === undefined) cursors.set(room, (cursor = new DeltaCursor()));
    const sent = cursor.next(encoding);
    fullBytes += payload.length;
    sentBytes += sent.payload.length;
    if (sent.delta) deltas++;
    const t1 = performance.now();
    const got = decoder.apply(room, { type: "message", payload: sent.payload, ...(sent.delta ? { delta: true, payloadFormat: "binary" as const } : {}) });
    decodeMs += performance.now() - t1;
    if (dec.decode(got.payload) !== text) throw new Error(`payload ${room} not rebuilt exactly`);
  }
  return {
    layout,
    messages: stream.length,
    fullBytes,
    sentBytes,
    deltas,
    encodeUs: (encodeMs * 1000) / stream.length,
    decodeUs: (decodeMs * 1000) / stream.length,
    avgFull: fullBytes / stream.length,
  };
}

// Warm the JIT on one stream, then measure.
const measuredTicks = ticks;
run("one-room");
const results = [run("per-instrument"), run("one-room")];

console.log(`delta bench: ${measuredTicks} ticks, 50 instruments x 20 fields, 1-3 fields change per tick, node ${process.version}`);
console.log("| layout | messages | avg full payload | bytes full | bytes with deltas | sent as delta | ratio | saved | encode µs/msg | decode µs/msg |");
console.log("|---|---|---|---|---|---|---|---|---|---|");
for (const r of results) {
  console.log(
    `| ${r.layout} | ${r.messages} | ${r.avgFull.toFixed(0)} B | ${r.fullBytes} | ${r.sentBytes} | ${((100 * r.deltas) / r.messages).toFixed(1)} % | ` +
      `${(r.fullBytes / r.sentBytes).toFixed(2)}x | ${(100 * (1 - r.sentBytes / r.fullBytes)).toFixed(1)} % | ${r.encodeUs.toFixed(1)} | ${r.decodeUs.toFixed(1)} |`,
  );
}

if (process.env.ARQON_BENCH_OUT) {
  const metrics = results.flatMap((r) => [
    { key: `delta.${r.layout}.ratio`, label: `delta ${r.layout}: bytes full / with deltas`, unit: "x", value: round(r.fullBytes / r.sentBytes, 2) },
    { key: `delta.${r.layout}.saved`, label: `delta ${r.layout}: bytes saved`, unit: "%", value: round(100 * (1 - r.sentBytes / r.fullBytes), 1) },
    { key: `delta.${r.layout}.encode`, label: `delta ${r.layout}: encode per message`, unit: "µs", value: round(r.encodeUs, 1) },
  ]);
  writeFileSync(process.env.ARQON_BENCH_OUT, JSON.stringify({ metrics, results }, null, 2));
}
