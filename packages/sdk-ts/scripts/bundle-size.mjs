/* global process, console */
// The browser bundle budget of @arqon/sdk, measured beside the clients people compare it with.
//
// Every library is bundled the same way (esbuild, ESM, minified, platform "browser", its whole public entry exported
// so nothing is tree-shaken away) and gzipped with Node's zlib at level 9. Fails (exit 1) when the JSON-only bundle of
// @arqon/sdk exceeds BUDGET_GZIP or grows past 1.10x socket.io-client's. `--write` also puts the table into
// docs/sdk-ts.md between the bundle-size markers.
//
//   npm run size -w @arqon/sdk [-- --write]
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { bundle, ENTRIES } from "./browser-bundle.mjs";

/** Gzipped bytes the JSON-only browser bundle may reach. Raise it only with a reason in the commit. */
export const BUDGET_GZIP = 14_400;

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const docPath = join(root, "..", "..", "docs", "sdk-ts.md");
const require = createRequire(join(root, "package.json"));
/** The installed version of `name`, read from the package.json next to its resolved entry (not every package exports it). */
function version(name) {
  if (name === "@arqon/sdk") return JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version;
  const [dir] = require.resolve.paths(name).map((p) => join(p, name)).filter((d) => existsSync(join(d, "package.json")));
  if (dir === undefined) throw new Error(`${name} is not installed (it is a devDependency of the repository root)`);
  return JSON.parse(readFileSync(join(dir, "package.json"), "utf8")).version;
}

const ours = version("@arqon/sdk");
const rows = [
  { name: `@arqon/sdk ${ours}`, what: "JSON codec (the `./browser` bundle)", entry: ENTRIES.json, ours: true },
  { name: `@arqon/sdk ${ours}`, what: "with `@arqon/sdk/protobuf`", entry: ENTRIES.protobuf },
  { name: `centrifuge ${version("centrifuge")}`, what: "JSON protocol client", entry: 'export * from "centrifuge";' },
  { name: `socket.io-client ${version("socket.io-client")}`, what: "default entry", entry: 'export * from "socket.io-client";', peer: "socket.io" },
  { name: `ably ${version("ably")}`, what: "default entry (Realtime and REST)", entry: 'export * from "ably";' },
  {
    name: `ably ${version("ably")}`,
    what: "`ably/modular`: BaseRealtime + WebSocketTransport",
    entry: 'export { BaseRealtime, WebSocketTransport } from "ably/modular";',
  },
];

for (const row of rows) Object.assign(row, await bundle(row.entry));
const base = rows.find((r) => r.ours);
const sio = rows.find((r) => r.peer === "socket.io");

const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
const table = [
  "| library | bundle | minified | gzipped | gzipped vs @arqon/sdk |",
  "|---|---|---:|---:|---:|",
  ...rows.map((r) => `| ${r.name} | ${r.what} | ${kb(r.bytes)} | ${kb(r.gzip)} | ${(r.gzip / base.gzip).toFixed(2)}x |`),
].join("\n");
console.log(table);

const failures = [];
if (base.gzip > BUDGET_GZIP) failures.push(`@arqon/sdk is ${base.gzip} bytes gzipped, over its budget of ${BUDGET_GZIP}`);
// socket.io-client carries a polling fallback as @arqon/sdk carries its SSE / HTTP-streaming one: at most 1.10x its size.
if (base.gzip > sio.gzip * 1.1) failures.push(`@arqon/sdk (${base.gzip} B gzipped) is more than 1.10x socket.io-client (${sio.gzip} B)`);
console.log(`\n@arqon/sdk browser bundle: ${base.gzip} bytes gzipped (budget ${BUDGET_GZIP}, socket.io-client ${sio.gzip})`);

if (process.argv.includes("--write")) {
  const doc = readFileSync(docPath, "utf8");
  const start = "<!-- bundle-size:start -->";
  const end = "<!-- bundle-size:end -->";
  const from = doc.indexOf(start);
  const to = doc.indexOf(end);
  if (from < 0 || to < from) throw new Error(`${docPath} has no ${start} ... ${end} block`);
  writeFileSync(docPath, `${doc.slice(0, from + start.length)}\n${table}\n${doc.slice(to)}`);
  console.log(`wrote the table into ${docPath}`);
}

if (failures.length > 0) {
  for (const f of failures) console.error(`FAIL: ${f}`);
  process.exit(1);
}
