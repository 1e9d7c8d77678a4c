#!/usr/bin/env node
// `npm run release:pack`: `npm pack` every publishable package (built first by the script) into packs/ (not
// committed) and prints each tarball with its size. The tarballs are what `npm publish` would upload.
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { PUBLISHABLE_DIRS } from "./packages.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const PUBLISHABLE = PUBLISHABLE_DIRS.map((d) => path.join(root, d));

export function packAll(outDir) {
  mkdirSync(outDir, { recursive: true });
  const tarballs = [];
  for (const dir of PUBLISHABLE) {
    const out = execFileSync("npm", ["pack", "--json", "--pack-destination", outDir], { cwd: dir, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
    const [info] = JSON.parse(out);
    tarballs.push({ name: info.name, version: info.version, file: path.join(outDir, info.filename), size: info.size, files: info.entryCount });
  }
  return tarballs;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const outDir = path.join(root, "packs");
  rmSync(outDir, { recursive: true, force: true });
  for (const t of packAll(outDir)) console.log(`${path.relative(root, t.file)}  ${t.name}@${t.version}  ${(t.size / 1024).toFixed(1)} KiB, ${t.files} files`);
}
