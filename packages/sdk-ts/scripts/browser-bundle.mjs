/* global process, console */
// Builds the minified browser bundles of @arqon/sdk and prints their gzipped sizes:
//   dist/browser/arqon-sdk.min.js           ESM, JSON codec only (no protobufjs)
//   dist/browser/arqon-sdk.protobuf.min.js  ESM, with the protobuf codec registered
//   dist/browser/arqon-sdk.iife.min.js      a classic <script>, JSON only, exposing the global `Arqon`
//   dist/browser/arqon-webhooks.min.js      ESM, verifyWebhook / signWebhook only (Web Crypto, no client)
// `ws` is replaced by the browser's WebSocket (isomorphic-ws's "browser" entry); @arqon/core is bundled from source.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Bundles `entry` for browsers; returns the output path, its bytes and its gzipped bytes. */
export async function bundle(entry, outfile, extra = {}) {
  const result = await build({
    stdin: { contents: entry, resolveDir: root, sourcefile: "browser-entry.js", loader: "js" },
    bundle: true,
    minify: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    conditions: ["arqon-source"],
    legalComments: "none",
    metafile: true,
    write: false,
    ...extra,
  });
  const code = result.outputFiles[0].contents;
  if (outfile) {
    mkdirSync(dirname(outfile), { recursive: true });
    writeFileSync(outfile, code);
  }
  return { outfile, bytes: code.length, gzip: gzipSync(code, { level: 9 }).length, inputs: Object.keys(result.metafile.inputs), code };
}

export const ENTRIES = {
  json: 'export * from "./src/index.ts";',
  protobuf: 'import "./src/protobuf.ts"; export * from "./src/index.ts";',
  webhooks: 'export * from "./src/webhooks.ts";',
};

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const out = join(root, "dist", "browser");
  const json = await bundle(ENTRIES.json, join(out, "arqon-sdk.min.js"));
  const proto = await bundle(ENTRIES.protobuf, join(out, "arqon-sdk.protobuf.min.js"));
  const iife = await bundle(ENTRIES.json, join(out, "arqon-sdk.iife.min.js"), { format: "iife", globalName: "Arqon" });
  const webhooks = await bundle(ENTRIES.webhooks, join(out, "arqon-webhooks.min.js"));
  for (const b of [json, proto, iife, webhooks]) {
    console.log(`${b.outfile.slice(root.length + 1)}: ${b.bytes} bytes, ${b.gzip} bytes gzipped`);
  }
}
