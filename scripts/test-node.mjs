#!/usr/bin/env node
/* global process, console */
// Runs the test suites of every Node package on another Node major than the one installed, to keep `engines` honest
// (">=20.19": CI runs everything on Node 20 and this on Node 24).
//
//   node scripts/test-node.mjs [version] [-- extra nx args]        e.g. node scripts/test-node.mjs 24.21.0
//
// The binary comes from the npm registry (node-linux-<arch>, the package the `node` npm package installs), is cached
// in .cache/node/<version>/ and goes first on PATH for nx and every process the tests start (gateways, `arqon serve`,
// tsx). The dependencies installed by `npm ci` are reused: the native ones (lmdb, msgpackr) ship N-API builds that load
// on any Node. The Python and Go SDKs' suites (and the Go example's) are left out: they test Python and Go against
// gateways that npm test already ran on Node 20.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { arch, platform } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const DEFAULT_VERSION = "24.21.0";
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const version = args[0] && !args[0].startsWith("-") ? args.shift() : DEFAULT_VERSION;
if (args[0] === "--") args.shift();

const cpu = { x64: "x64", arm64: "arm64" }[arch()];
if (platform() !== "linux" || cpu === undefined) {
  console.error(`test-node: no node-linux-* package for ${platform()}/${arch()}`);
  process.exit(1);
}

const dir = join(root, ".cache", "node", version);
const bin = join(dir, "package", "bin");
if (!existsSync(join(bin, "node"))) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  console.log(`test-node: fetching node-linux-${cpu}@${version} from the npm registry`);
  execFileSync("npm", ["pack", "--silent", `node-linux-${cpu}@${version}`], { cwd: dir, stdio: ["ignore", "ignore", "inherit"] });
  const tarball = readdirSync(dir).find((f) => f.endsWith(".tgz"));
  execFileSync("tar", ["-xzf", tarball], { cwd: dir, stdio: "inherit" });
  rmSync(join(dir, tarball));
}

const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
const running = execFileSync("node", ["--version"], { env, encoding: "utf8" }).trim();
if (running !== `v${version}`) {
  console.error(`test-node: expected v${version} first on PATH, got ${running}`);
  process.exit(1);
}
console.log(`test-node: running the test suites on Node ${running}`);

const nx = join(root, "node_modules", ".bin", "nx");
const run = spawnSync(
  nx,
  ["run-many", "-t", "test", "--parallel=2", "--outputStyle=stream", "--skip-nx-cache", "--exclude", "@arqon/sdk-py,@arqon/sdk-go,hello-bot-go", ...args],
  { cwd: root, env, stdio: "inherit" },
);
process.exit(run.status ?? 1);
