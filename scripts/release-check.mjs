#!/usr/bin/env node
// CI: `npm run release:version` on a throwaway clone with one changeset must bump every package of the fixed group to
// the same new version, rewrite every internal range, add a CHANGELOG entry to each package and carry the version into
// the Python SDK. Nothing in this checkout changes.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { PUBLISHABLE_DIRS } from "./packages.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const dir = mkdtempSync(path.join(tmpdir(), "arqon-release-"));
const run = (cmd, args, cwd = dir) => execFileSync(cmd, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
const fail = (why) => {
  console.error(`release-check: ${why}`);
  process.exitCode = 1;
};
try {
  run("git", ["clone", "-q", root, dir], root);
  symlinkSync(path.join(root, "node_modules"), path.join(dir, "node_modules"));
  const before = JSON.parse(readFileSync(path.join(dir, "packages/core/package.json"), "utf8")).version;
  const [major, minor] = before.split(".").map(Number);
  const expected = `${major}.${minor + 1}.0`;
  writeFileSync(path.join(dir, ".changeset/release-check.md"), '---\n"@arqon/server": minor\n---\n\nA changeset made by scripts/release-check.mjs.\n');
  // release:version without its lockfile refresh (the clone borrows this checkout's node_modules).
  run("npx", ["changeset", "version"]);
  run("node", ["scripts/versions.mjs"]);
  run("node", ["scripts/versions.mjs", "--check"]);
  for (const p of PUBLISHABLE_DIRS) {
    const pkg = JSON.parse(readFileSync(path.join(dir, p, "package.json"), "utf8"));
    if (pkg.version !== expected) fail(`${pkg.name} is ${pkg.version}, expected ${expected}`);
    const log = readFileSync(path.join(dir, p, "CHANGELOG.md"), "utf8");
    if (!log.includes(`## ${expected}`)) fail(`${pkg.name}'s CHANGELOG.md has no "## ${expected}" entry`);
  }
  const serverLog = readFileSync(path.join(dir, "packages/server/CHANGELOG.md"), "utf8");
  if (!serverLog.includes("A changeset made by scripts/release-check.mjs.")) fail("the changeset's text is not in @arqon/server's CHANGELOG.md");
  if (!readFileSync(path.join(dir, "packages/sdk-py/pyproject.toml"), "utf8").includes(`version = "${expected}"`)) fail("pyproject.toml was not bumped");
  if (!process.exitCode) console.log(`release-check: one changeset took every package from ${before} to ${expected}, changelogs and the Python SDK included`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
