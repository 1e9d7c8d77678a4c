/* global process, console */
// Builds the web console (console/) into a flat static directory, dist/console by default:
//   node scripts/build-console.mjs [outDir]
// index.html names the bundled script and stylesheet by content hash (cached for a year by the server); Preact and
// htm are bundled in, so the published package needs nothing else at run time.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const outDir = resolve(process.argv[2] ?? join(root, "dist", "console"));

rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });
const result = await build({
  entryPoints: { console: join(root, "console", "src", "main.ts"), style: join(root, "console", "console.css") },
  bundle: true,
  minify: true,
  format: "esm",
  platform: "browser",
  target: ["es2022", "chrome110", "firefox110", "safari16"],
  entryNames: "[name]-[hash]",
  outdir: outDir,
  metafile: true,
  legalComments: "eof",
  sourcemap: false,
  logLevel: "warning",
});
const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const js = outputs.find((n) => n.startsWith("console-") && n.endsWith(".js"));
const css = outputs.find((n) => n.startsWith("style-") && n.endsWith(".css"));
if (!js || !css) throw new Error(`console build: expected a script and a stylesheet, got ${outputs.join(", ")}`);
const page = readFileSync(join(root, "console", "index.html"), "utf8").replace("%JS%", js).replace("%CSS%", css);
writeFileSync(join(outDir, "index.html"), page);
console.log(`console built into ${outDir}: index.html, ${js}, ${css}`);
