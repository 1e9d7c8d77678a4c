#!/usr/bin/env node
// The clean-room install test (CI, after the build): pack every publishable package, install only the tarballs into a
// fresh app in a temp folder outside the repository (its own package.json, no workspace links), then, from that app:
//   (a) embed @arqon/server in an existing node:http server as docs/gateway.md shows, connect with @arqon/sdk from
//       Node, publish and receive;
//   (b) `npx arqon serve` starts, prints its token, answers /health and /console (the console build ships in the
//       package), and the token connects;
//   (c) TypeScript type-checks a consumer file against the installed types;
//   (d) the installed browser bundle of @arqon/sdk loads in Chromium and chats through the embedded server.
// It fails when any @arqon package resolves to a path outside the app (a workspace link).
//
//   node scripts/clean-room.mjs            (ARQON_CHROMIUM overrides /usr/bin/chromium)
import { execFileSync, spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { packAll } from "./pack.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const rootPkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8"));
const CHROMIUM = process.env.ARQON_CHROMIUM ?? "/usr/bin/chromium";
const work = mkdtempSync(path.join(tmpdir(), "arqon-clean-room-"));
const app = path.join(work, "app");
const started = Date.now();
const children = [];

function step(what) {
  console.log(`clean-room [${((Date.now() - started) / 1000).toFixed(1)}s] ${what}`);
}
function fail(why) {
  throw new Error(`clean-room: ${why}`);
}
/** An HS256 JWT made with node:crypto, as an application backend without a JWT library would. */
function token(secret, claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ exp: Math.floor(Date.now() / 1000) + 600, ...claims })}`;
  return `${body}.${createHmac("sha256", secret).update(body).digest("base64url")}`;
}
/**
 * Runs `node args…` (or `command args…`) in the app; resolves with its stdout once `until` says it is ready (for a
 * long-running child) or at a clean exit.
 */
function runInApp(args, { env = {}, until, command = process.execPath } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: app, env: { PATH: process.env.PATH, HOME: work, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    children.push(child);
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => {
      out += d;
      if (until && until(out)) resolve({ child, out });
    });
    child.stderr.on("data", (d) => (err += d));
    const timer = setTimeout(() => reject(new Error(`${args.join(" ")} timed out\n${out}\n${err}`)), 60_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      if (until) reject(new Error(`${args.join(" ")} exited with ${code} before it was ready\n${out}\n${err}`));
      else if (code === 0) resolve({ child, out });
      else reject(new Error(`${args.join(" ")} exited with ${code}\n${out}\n${err}`));
    });
  });
}

try {
  step("packing");
  const tarballs = packAll(path.join(work, "packs"));
  for (const t of tarballs) step(`  ${t.name}@${t.version} ${(t.size / 1024).toFixed(1)} KiB`);

  mkdirSync(app);
  writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "clean-room-app", private: true, type: "module" }, null, 2));
  step("installing the tarballs (and typescript, @types/node for the type check) from the registry");
  const devTools = [`typescript@${rootPkg.devDependencies.typescript}`, `@types/node@${rootPkg.devDependencies["@types/node"]}`];
  execFileSync("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error", ...tarballs.map((t) => t.file), ...devTools], {
    cwd: app,
    stdio: "inherit",
    env: { ...process.env, npm_config_workspaces: "false" },
  });

  // No @arqon package may be a link, or resolve, outside the app.
  const scope = path.join(app, "node_modules", "@arqon");
  for (const name of readdirSync(scope)) {
    const dir = path.join(scope, name);
    if (lstatSync(dir).isSymbolicLink()) fail(`node_modules/@arqon/${name} is a link to ${realpathSync(dir)}`);
    if (existsSync(path.join(dir, "node_modules", "@arqon"))) fail(`@arqon/${name} has its own nested @arqon packages`);
  }
  const appRequire = createRequire(path.join(app, "package.json"));
  for (const spec of ["@arqon/core", "@arqon/server", "@arqon/sdk", "@arqon/sdk/browser", "@arqon/sdk/webhooks", "@arqon/sdk/server", "@arqon/nats", "@arqon/operators", "@arqon/cli/package.json"]) {
    const resolved = realpathSync(appRequire.resolve(spec));
    if (!resolved.startsWith(realpathSync(app) + path.sep) || resolved.startsWith(root + path.sep)) fail(`${spec} resolves to ${resolved}, outside the app`);
  }
  step("every @arqon package resolves inside the app");

  // (a) Embedded in an existing node:http server, as docs/gateway.md shows (on loopback, port 0).
  const secret = "clean-room-secret-0123456789abcdef-0123";
  writeFileSync(
    path.join(app, "embed.mjs"),
    `import { createServer } from "node:http";
import { createArqonServer } from "@arqon/server";
import { ArqonClient } from "@arqon/sdk";

const arqon = createArqonServer({ auth: { secret: process.env.ARQON_JWT_SECRET } });
const app = createServer(async (req, res) => {
  if (await arqon.handleRequest(req, res)) return;
  res.end("my app");
});
arqon.attach(app);
await new Promise((resolve) => app.listen(0, "127.0.0.1", resolve));
const base = "127.0.0.1:" + app.address().port;

const reader = new ArqonClient("ws://" + base + "/ws", { token: process.env.ARQON_TOKEN });
const client = new ArqonClient("ws://" + base + "/ws", { token: process.env.ARQON_TOKEN });
await Promise.all([reader.connect(), client.connect()]);
const received = [];
await reader.room("lobby").subscribe((m) => received.push(m.payload));
const ack = await client.room("lobby").publish({ text: "hi" });
await arqon.publish("acme", "lobby", { text: "from the server" });
for (let i = 0; i < 100 && received.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
const mine = await (await fetch("http://" + base + "/elsewhere")).text();
const health = (await fetch("http://" + base + "/health")).status;
console.log(JSON.stringify({ ack, received, mine, health }));
client.close();
reader.close();
console.log("READY " + base);
process.on("SIGTERM", async () => {
  await arqon.close();
  app.close();
  process.exit(0);
});
`,
  );
  const alice = token(secret, { sub: "alice", tenant: "acme", caps: { sub: ["**"], pub: ["**"] } });
  const embed = await runInApp(["embed.mjs"], { env: { ARQON_JWT_SECRET: secret, ARQON_TOKEN: alice }, until: (o) => o.includes("READY ") });
  const result = JSON.parse(embed.out.split("\n")[0]);
  const base = /READY (\S+)/.exec(embed.out)[1];
  if (result.ack?.offset !== 1) fail(`the publish was not acknowledged at offset 1: ${JSON.stringify(result.ack)}`);
  if (JSON.stringify(result.received) !== JSON.stringify([{ text: "hi" }, { text: "from the server" }])) fail(`received ${JSON.stringify(result.received)}`);
  if (result.mine !== "my app" || result.health !== 200) fail(`the app's own route said ${result.mine}, /health ${result.health}`);
  step(`(a) embedded in node:http: published at offset ${result.ack.offset}, received ${result.received.length} messages, the app's routes still its own`);

  // (b) npx arqon serve from the installed CLI: the bin link npx runs, node_modules/.bin/arqon.
  const served = await runInApp(["serve", "--port", "0", "--memory", "--data-dir", path.join(work, "data")], {
    command: path.join(app, "node_modules", ".bin", "arqon"),
    until: (o) => /A token[^\n]*\n\s+(\S+)/.test(o) && /WebSocket\s+ws:\/\/\S+/.test(o),
  });
  const wsUrl = /WebSocket\s+(ws:\/\/\S+)/.exec(served.out)[1];
  const devToken = /A token[^\n]*\n\s+(\S+)/.exec(served.out)[1];
  const httpUrl = wsUrl.replace(/^ws/, "http").replace(/\/ws$/, "");
  const served200 = (await fetch(`${httpUrl}/health`)).status;
  if (served200 !== 200) fail(`arqon serve /health answered ${served200}`);
  // The web console ships inside the installed @arqon/server (dev mode turns it on): the page and its script load.
  const consolePage = await fetch(`${httpUrl}/console`);
  const consoleHtml = await consolePage.text();
  const consoleScript = /src="(\/console\/[^"]+\.js)"/.exec(consoleHtml)?.[1];
  if (consolePage.status !== 200 || !consoleScript) fail(`arqon serve /console answered ${consolePage.status}: ${consoleHtml.slice(0, 200)}`);
  const scriptRes = await fetch(`${httpUrl}${consoleScript}`);
  if (scriptRes.status !== 200 || (await scriptRes.text()).length < 1000) fail(`the console script ${consoleScript} answered ${scriptRes.status}`);
  writeFileSync(
    path.join(app, "dev-client.mjs"),
    `import { ArqonClient } from "@arqon/sdk";
const client = new ArqonClient(process.env.URL, { token: process.env.TOKEN });
await client.connect();
const ack = await client.room("lobby").publish({ text: "dev" });
console.log(JSON.stringify(ack));
client.close();
`,
  );
  const devAck = JSON.parse((await runInApp(["dev-client.mjs"], { env: { URL: wsUrl, TOKEN: devToken } })).out);
  if (typeof devAck.offset !== "number") fail(`the dev token did not publish: ${JSON.stringify(devAck)}`);
  served.child.kill("SIGTERM");
  step(`(b) npx arqon serve: printed a token, /health 200, /console and its script 200, the token published at offset ${devAck.offset}`);

  // (c) TypeScript against the installed types.
  writeFileSync(
    path.join(app, "consumer.ts"),
    `import { createServer } from "node:http";
import { createArqonServer, type ArqonServer, type PublishOptions } from "@arqon/server";
import { ArqonClient, type Room } from "@arqon/sdk";
import { verifyWebhook } from "@arqon/sdk/webhooks";
import { ArqonApiError, ArqonServerClient, type ServerPublishResult } from "@arqon/sdk/server";
import { ErrorCode, type Frame } from "@arqon/core";

const arqon: ArqonServer = createArqonServer({ auth: { secret: "s".repeat(32) } });
arqon.attach(createServer());
const options: PublishOptions = { headers: { "x-trace": "1" }, idempotencyKey: "k" };
export const published: Promise<{ offset: number }> = arqon.publish("acme", "lobby", { text: "hi" }, options);
const room: Room = new ArqonClient("ws://127.0.0.1:1/ws", { token: "t" }).room("lobby");
export const code: string = ErrorCode.AUTH_INVALID;
export const frame: Frame = { type: "publish", room: room.name };
export const check: typeof verifyWebhook = verifyWebhook;
const api = new ArqonServerClient({ url: "http://127.0.0.1:1", operatorKey: "k", tenant: "acme" });
export const viaApi: Promise<ServerPublishResult> = api.publish("lobby", { text: "hi" });
export const apiError: ArqonApiError = new ArqonApiError(ErrorCode.RATE_LIMITED, "slow down", 429, { retryAfterMs: 1000 });
`,
  );
  writeFileSync(path.join(app, "tsconfig.json"), JSON.stringify({ compilerOptions: { strict: true, noEmit: true, module: "NodeNext", moduleResolution: "NodeNext", target: "ES2022", types: ["node"], skipLibCheck: false }, files: ["consumer.ts"] }));
  await runInApp([path.join(app, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json"]);
  step("(c) tsc --strict type-checks a consumer against the installed types (skipLibCheck off)");

  // (d) The installed browser bundle in Chromium, chatting through the embedded server of (a).
  const bundle = readFileSync(appRequire.resolve("@arqon/sdk/browser"));
  const page = createServer((req, res) => {
    if (req.url === "/arqon-sdk.min.js") res.writeHead(200, { "content-type": "text/javascript" }).end(bundle);
    else res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><title>clean room</title>");
  });
  await new Promise((resolve) => page.listen(0, "127.0.0.1", resolve));
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu", "--no-first-run"] });
  try {
    const tab = await browser.newPage();
    await tab.goto(`http://127.0.0.1:${page.address().port}/`);
    const bob = token(secret, { sub: "bob", tenant: "acme", caps: { sub: ["**"], pub: ["**"] } });
    const got = await tab.evaluate(
      async ({ url, tok }) => {
        const { ArqonClient } = await import("/arqon-sdk.min.js");
        const reader = new ArqonClient(url, { token: tok });
        const writer = new ArqonClient(url, { token: tok });
        await Promise.all([reader.connect(), writer.connect()]);
        const seen = new Promise((resolve) => reader.room("browser").subscribe((m) => resolve(m.payload)));
        await new Promise((r) => setTimeout(r, 100));
        await writer.room("browser").publish({ text: "from chromium" });
        const payload = await seen;
        reader.close();
        writer.close();
        return payload;
      },
      { url: `ws://${base}/ws`, tok: bob },
    );
    if (got?.text !== "from chromium") fail(`the browser received ${JSON.stringify(got)}`);
  } finally {
    await browser.close();
    page.close();
  }
  step("(d) Chromium loaded @arqon/sdk/browser from the installed package and chatted through the embedded server");
  embed.child.kill("SIGTERM");
  step("passed");
} catch (err) {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
} finally {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  rmSync(work, { recursive: true, force: true });
}
