#!/usr/bin/env node
/* global process, console, setTimeout, clearTimeout */
// Runs the shell commands of this folder's README.md, as written, from a repository root: `npx arqon serve`, the bot
// (`ARQON_TOKEN=$(npx arqon token ...) go -C apps/examples/hello-bot-go run .`), `npx arqon publish` and
// `npx arqon history`, and checks that the bot's answer is in the history. readme.test.mjs uses it (from this
// checkout, and the fresh-clone checks); `node apps/examples/hello-bot-go/readme-flow.mjs --fresh-clone` runs the
// whole promise by hand or in CI: git clone this repository into a temp folder, npm ci there, then the flow there.
//
// The commands run unchanged; only the environment differs from a developer's terminal: every ARQON_* variable of the
// caller is dropped, ARQON_PORT=0 makes `arqon serve` take a free loopback port (ARQON_HOST=127.0.0.1), ARQON_URL
// points the bot and the client commands at it, and ARQON_DATA_DIR is a new temp folder, so the developer's own
// ./.arqon/ (dev key, database) is neither read nor written.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, "..", "..", "..");

/** The README's promise: the flow (after npm ci) finishes within this. */
export const FLOW_BUDGET_MS = 5 * 60_000;

/** Removes a trailing `# comment` outside quotes; returns "" for a comment-only line. */
export function stripComment(line) {
  let quote = "";
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = "";
    } else if (c === "'" || c === '"') {
      quote = c;
    } else if (c === "#" && (i === 0 || /\s/.test(line[i - 1]))) {
      return line.slice(0, i).trimEnd();
    }
  }
  return line.trimEnd();
}

/** Every command line of the README's ```sh blocks, comments stripped, in order. */
export function readmeCommands(readme = readFileSync(path.join(here, "README.md"), "utf8")) {
  const commands = [];
  for (const block of readme.matchAll(/```sh\n([\s\S]*?)```/g)) {
    for (const line of block[1].split("\n")) {
      const command = stripComment(line).trim();
      if (command !== "") commands.push(command);
    }
  }
  return commands;
}

/** The README's commands by role; throws when one is missing, so a README edit cannot silently skip a step. */
export function flowSteps(commands = readmeCommands()) {
  const find = (what, test) => {
    const found = commands.filter(test);
    if (found.length !== 1) throw new Error(`the README should hold exactly one ${what} command, found ${found.length}: ${JSON.stringify(commands)}`);
    return found[0];
  };
  const steps = {
    install: find("npm ci", (c) => c === "npm ci"),
    serve: find("npx arqon serve", (c) => /^npx arqon serve(\s|$)/.test(c)),
    bot: find("bot (go run)", (c) => /\bgo -C apps\/examples\/hello-bot-go run \.$/.test(c)),
    publish: find("npx arqon publish", (c) => /^npx arqon publish /.test(c)),
    history: find("npx arqon history", (c) => /^npx arqon history /.test(c)),
  };
  const known = new Set(Object.values(steps));
  const unknown = commands.filter((c) => !known.has(c));
  if (unknown.length > 0) throw new Error(`README commands the flow does not know how to run: ${JSON.stringify(unknown)}`);
  return steps;
}

/** The caller's environment without ARQON_*, plus `extra`; no colours. */
export function flowEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("ARQON_")) env[k] = v;
  return { ...env, NO_COLOR: "1", FORCE_COLOR: "0", ...extra };
}

/** A `bash -c command` in its own process group (so stopping it stops what it started: npx, go run, the bot). */
function startShell(command, cwd, env, log) {
  const child = spawn("bash", ["-c", command], { cwd, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  const proc = { child, out: "", exited: false, code: null, command };
  const exited = new Promise((resolve) => {
    child.on("exit", (code, signal) => {
      proc.exited = true;
      proc.code = code ?? signal;
      resolve(proc.code);
    });
  });
  proc.exitedPromise = exited;
  const take = (d) => {
    proc.out += d.toString();
    if (log) log(d.toString());
  };
  child.stdout.on("data", take);
  child.stderr.on("data", take);
  return proc;
}

/** Waits until `until(output)` holds (polling every 50 ms, at most timeoutMs) or the process exits. */
async function waitFor(proc, until, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (until(proc.out)) return;
    if (proc.exited) throw new Error(`${what}: \`${proc.command}\` exited (${proc.code}) first:\n${proc.out}`);
    await sleep(50);
  }
  throw new Error(`${what}: nothing within ${timeoutMs / 1000} s from \`${proc.command}\`:\n${proc.out}`);
}

/** Runs a command to its end (at most timeoutMs); resolves with its output, rejects on a non-zero exit. */
async function runShell(command, cwd, env, timeoutMs) {
  const proc = startShell(command, cwd, env);
  const timer = setTimeout(() => stop(proc), timeoutMs);
  const code = await proc.exitedPromise;
  clearTimeout(timer);
  if (code !== 0) throw new Error(`\`${command}\` exited with ${code}:\n${proc.out}`);
  return proc.out;
}

/** Stops a process group this module started, by its id: SIGTERM, then SIGKILL after 10 s. */
export async function stop(proc) {
  if (!proc || proc.exited) return;
  const signal = (sig) => {
    try {
      process.kill(-proc.child.pid, sig);
    } catch {
      // already gone
    }
  };
  signal("SIGTERM");
  const timer = setTimeout(() => signal("SIGKILL"), 10_000);
  await proc.exitedPromise;
  clearTimeout(timer);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The README flow in `root` (a checkout where npm ci has run). Resolves with { ms, steps, history, timings } or
 * rejects with what went wrong; always stops what it started and removes its temp data folder.
 */
export async function runReadmeFlow({ root = repoRoot, log } = {}) {
  const steps = flowSteps(readmeCommands(readFileSync(path.join(root, "apps", "examples", "hello-bot-go", "README.md"), "utf8")));
  const dataDir = mkdtempSync(path.join(tmpdir(), "hello-bot-go-readme-"));
  const started = Date.now();
  const timings = {};
  const mark = (name) => (timings[name] = Date.now() - started);
  let env = flowEnv({ ARQON_PORT: "0", ARQON_HOST: "127.0.0.1", ARQON_DATA_DIR: dataDir });
  let serve;
  let bot;
  try {
    // Terminal 1.
    serve = startShell(steps.serve, root, env, log);
    await waitFor(serve, (out) => /WebSocket\s+ws:\/\/127\.0\.0\.1:\d+\/ws/.test(out), 60_000, "arqon serve");
    const url = /WebSocket\s+(ws:\/\/127\.0\.0\.1:\d+\/ws)/.exec(serve.out)[1];
    if (url.endsWith(":9100/ws")) throw new Error("arqon serve took 9100 although ARQON_PORT=0");
    env = { ...env, ARQON_URL: url };
    mark("serve");
    // Terminal 2 (the first go run may download modules from the Go module proxy and compile).
    bot = startShell(steps.bot, root, env, log);
    await waitFor(bot, (out) => out.includes('listening in "lobby"'), 240_000, "the bot");
    mark("bot");
    // Terminal 3.
    await runShell(steps.publish, root, env, 60_000);
    mark("publish");
    let history = "";
    for (let attempt = 0; attempt < 40; attempt++) {
      history = await runShell(steps.history, root, env, 60_000);
      if (history.includes("hello, alice!")) break;
      await sleep(250);
    }
    mark("history");
    return { ms: Date.now() - started, steps, history, timings, url };
  } finally {
    await stop(bot);
    await stop(serve);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** `git clone` of `source` (a local path) into a new temp folder; returns the clone's path. */
export function cloneRepo(source = repoRoot) {
  const parent = mkdtempSync(path.join(tmpdir(), "hello-bot-go-clone-"));
  const dir = path.join(parent, "arqonbus");
  execFileSync("git", ["clone", "--quiet", "--no-hardlinks", source, dir], { stdio: ["ignore", "ignore", "inherit"] });
  return { dir, remove: () => rmSync(parent, { recursive: true, force: true }) };
}

export function trackedFiles(dir) {
  return new Set(execFileSync("git", ["ls-files"], { cwd: dir, encoding: "utf8", maxBuffer: 64 << 20 }).split("\n").filter(Boolean));
}

// node readme-flow.mjs --fresh-clone: clone, npm ci, the flow, with the time of each.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const fresh = process.argv.includes("--fresh-clone");
  const t0 = Date.now();
  const clone = fresh ? cloneRepo() : undefined;
  try {
    const root = clone ? clone.dir : repoRoot;
    if (clone) {
      console.log(`cloned into ${root} (${((Date.now() - t0) / 1000).toFixed(1)} s); npm ci ...`);
      const t1 = Date.now();
      execFileSync("npm", ["ci", "--no-audit", "--no-fund"], { cwd: root, stdio: "inherit", env: flowEnv({}) });
      console.log(`npm ci: ${((Date.now() - t1) / 1000).toFixed(1)} s`);
    }
    const result = await runReadmeFlow({ root });
    console.log(result.history.trim());
    if (!result.history.includes("hello, alice!")) throw new Error("the bot's answer is not in the history");
    console.log(`README flow after npm ci: ${(result.ms / 1000).toFixed(1)} s (${JSON.stringify(result.timings)} ms)`);
    console.log(`total${clone ? " from git clone" : ""}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  } finally {
    clone?.remove();
  }
}
