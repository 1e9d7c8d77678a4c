#!/usr/bin/env node
/* global process, console */
// Runs `go test -race -count=1 ./...` in the current directory (packages/sdk-go, or apps/examples/hello-bot-go, whose
// package.json calls this script too); the tests start a real `arqon serve` from packages/cli/dist. Extra arguments
// go to go test.
//
// Without a usable Go toolchain (go >= 1.26, and cgo with a C compiler for -race) it prints a loud SKIP and exits 0,
// unless ARQON_REQUIRE_GO=1, which turns the skip into a failure. Modules come from the Go module proxy on first use.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const required = process.env.ARQON_REQUIRE_GO === "1";
const go = process.env.GO || "go";
const where = process.cwd();

function skip(why) {
  const line = "=".repeat(100);
  const verdict = required ? "FAIL (ARQON_REQUIRE_GO=1)" : "SKIP";
  console.error(`\n${line}\n${verdict}: Go tests in ${where} did not run: ${why}\n${line}\n`);
  process.exit(required ? 1 : 0);
}

const version = spawnSync(go, ["env", "GOVERSION", "CGO_ENABLED", "CC"], { encoding: "utf8" });
if (version.error || version.status !== 0) skip(`no "${go}" on PATH (install Go 1.26 from https://go.dev/dl/)`);
const [goVersion, cgo, cc] = version.stdout.trim().split("\n");
const m = /^go(\d+)\.(\d+)/.exec(goVersion ?? "");
if (!m || Number(m[1]) < 1 || (Number(m[1]) === 1 && Number(m[2]) < 26)) skip(`${goVersion} is older than go1.26`);
if (cgo !== "1") skip("cgo is disabled (CGO_ENABLED=0); go test -race needs it");
const compiler = (cc || "gcc").split(" ")[0];
if (spawnSync(compiler, ["--version"], { stdio: "ignore" }).status !== 0) skip(`no C compiler "${compiler}" for go test -race (apt-get install gcc)`);
if (!existsSync(join(root, "packages", "cli", "dist", "cli.js"))) skip("packages/cli/dist is not built (run npm ci at the repository root)");

console.log(`${where}: ${goVersion} test -race ./...`);
const run = spawnSync(go, ["test", "-race", "-count=1", ...process.argv.slice(2), "./..."], { cwd: where, stdio: "inherit" });
process.exit(run.status ?? 1);
