#!/usr/bin/env node
// CI's package check (after the build): publint and @arethetypeswrong/cli on every publishable package, as packed.
// attw runs the node16 profile: the packages need Node >= 20.19, which resolves `exports` (TypeScript's legacy node10
// resolution has no subpaths). The browser bundles (`./browser`, `./webhooks/browser`) are ESM only, for
// <script type="module"> and bundlers, so a require() resolving to ESM is expected there and is the one ignored rule.
import { spawnSync } from "node:child_process";
import path from "node:path";
import { PUBLISHABLE } from "./pack.mjs";

const bin = (name) => path.join(path.dirname(new URL(import.meta.url).pathname), "..", "node_modules", ".bin", name);
let failed = 0;
for (const dir of PUBLISHABLE) {
  const name = path.basename(dir);
  for (const [tool, args] of [
    ["publint", ["--strict"]],
    ["attw", ["--pack", ".", "--profile", "node16", "--format", "table-flipped", "--ignore-rules", "cjs-resolves-to-esm"]],
  ]) {
    const r = spawnSync(bin(tool), args, { cwd: dir, encoding: "utf8" });
    const ok = r.status === 0;
    if (!ok) failed++;
    console.log(`${ok ? "ok  " : "FAIL"} ${tool} ${name}`);
    if (!ok) console.log((r.stdout + r.stderr).trim().replace(/^/gm, "     "));
  }
}
if (failed > 0) {
  console.error(`check-packages: ${failed} check(s) failed`);
  process.exit(1);
}
