import { createSecretKey, randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { SignJWT, jwtVerify } from "jose";
import { createAuthenticator } from "@arqon/server";
import { spreadText } from "./report.js";

/**
 * The cost of verifying one HS256 token, in-process, for the gateway's HMAC verifiers side by side: `builtin`
 * (node:crypto) and `jose` (jwtVerify, key imported once) through `createAuthenticator`, plus bare `jwtVerify` with a
 * KeyObject and with raw bytes (jose re-imports those on every call). Tokens are the bench clients' (distinct `sub`,
 * `iat`, `exp`, `caps`). Rounds are interleaved across verifiers; each reports wall time per token (one at a time,
 * and `--inflight` at once) and process CPU per token (WebCrypto's work runs on libuv's threads and counts too).
 *
 *   node --conditions=arqon-source --import tsx src/jwt-verify.ts --tokens 20000 --rounds 5
 */
const { values: args } = parseArgs({
  options: {
    tokens: { type: "string", default: "20000" },
    rounds: { type: "string", default: "5" },
    inflight: { type: "string", default: "64" },
    verifiers: { type: "string", default: "builtin,jose,jose-keyobject,jose-bytes" },
  },
});

const n = Number(args.tokens);
const rounds = Number(args.rounds);
const inflight = Number(args.inflight);
const secret = randomBytes(32).toString("base64url");
const secretBytes = new TextEncoder().encode(secret);

const tokens: string[] = [];
for (let i = 0; i < n; i++) {
  tokens.push(
    await new SignJWT({ tenant: "bench", caps: { sub: ["**"], pub: ["**"] } })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject(`user-${i}`)
      .setIssuedAt()
      .setExpirationTime("2h")
      .sign(secretBytes),
  );
}

type Verify = (token: string) => Promise<unknown>;
const auth = (hmacVerifier: "builtin" | "jose"): Verify => {
  const a = createAuthenticator({ secret, algorithms: ["HS256"], hmacVerifier });
  return (t) => a.verify(t);
};
const keyObject = createSecretKey(secretBytes);
const VERIFIERS: Record<string, Verify> = {
  builtin: auth("builtin"),
  jose: auth("jose"),
  "jose-keyobject": (t) => jwtVerify(t, keyObject, { algorithms: ["HS256"], requiredClaims: ["exp"], clockTolerance: 5 }),
  "jose-bytes": (t) => jwtVerify(t, secretBytes, { algorithms: ["HS256"], requiredClaims: ["exp"], clockTolerance: 5 }),
};
const ids = args.verifiers.split(",");
for (const id of ids) if (!VERIFIERS[id]) throw new Error(`unknown verifier "${id}" (known: ${Object.keys(VERIFIERS).join(", ")})`);

interface Sample {
  serialUs: number;
  parallelUs: number;
  cpuUs: number;
}

async function measure(verify: Verify): Promise<Sample> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (const t of tokens) await verify(t);
  const t1 = performance.now();
  let next = 0;
  const lane = async () => {
    while (next < tokens.length) await verify(tokens[next++]!);
  };
  await Promise.all(Array.from({ length: inflight }, lane));
  const t2 = performance.now();
  const cpu = process.cpuUsage(cpu0);
  return { serialUs: ((t1 - t0) * 1000) / n, parallelUs: ((t2 - t1) * 1000) / n, cpuUs: (cpu.user + cpu.system) / (2 * n) };
}

const results = new Map<string, Sample[]>(ids.map((id) => [id, []]));
for (const id of ids) await measure(VERIFIERS[id]!); // warm-up
for (let r = 0; r < rounds; r++) {
  const order = r % 2 === 0 ? ids : [...ids].reverse();
  for (const id of order) results.get(id)!.push(await measure(VERIFIERS[id]!));
}

console.log(`\n${n} HS256 tokens, ${rounds} rounds (interleaved, order alternating); µs per token, median (min-max)`);
console.log(`| verifier | wall, one at a time | wall, ${inflight} in flight | process CPU |`);
console.log("|---|---:|---:|---:|");
for (const [id, rs] of results) {
  const col = (f: (s: Sample) => number) => spreadText(rs.map(f), 1);
  console.log(`| ${id} | ${col((s) => s.serialUs)} | ${col((s) => s.parallelUs)} | ${col((s) => s.cpuUs)} |`);
}
