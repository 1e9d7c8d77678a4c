/* global process, console */
// The README's promise, checked: its shell commands, run as written from the repository root (readme-flow.mjs), get
// the bot's answer into `arqon history` within five minutes; and a fresh `git clone` holds everything the bot and
// the commands need (nothing untracked, such as a locally built dist, is used), and the bot builds there.
// Run by `npm test -w hello-bot-go` (after the Go tests). Without Go 1.26 it prints a loud SKIP, which
// ARQON_REQUIRE_GO=1 (set in CI) turns into a failure, as packages/sdk-go/scripts/test.mjs does.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { FLOW_BUDGET_MS, cloneRepo, flowSteps, readmeCommands, repoRoot, runReadmeFlow, stripComment, trackedFiles } from "./readme-flow.mjs";

const goVersion = spawnSync(process.env.GO || "go", ["env", "GOVERSION"], { encoding: "utf8" });
const m = /^go(\d+)\.(\d+)/.exec(goVersion.stdout ?? "");
const goOk = goVersion.status === 0 && m && (Number(m[1]) > 1 || Number(m[2]) >= 26);
const cliBuilt = existsSync(path.join(repoRoot, "packages", "cli", "dist", "cli.js"));
let skip = false;
if (!goOk || !cliBuilt) {
  const why = !goOk ? `no Go >= 1.26 on PATH (${(goVersion.stdout || goVersion.error?.message || "").trim()})` : "packages/cli/dist is not built (run npm ci at the repository root)";
  const line = "=".repeat(100);
  if (process.env.ARQON_REQUIRE_GO === "1") {
    console.error(`\n${line}\nFAIL (ARQON_REQUIRE_GO=1): the hello-bot-go README test cannot run: ${why}\n${line}\n`);
    process.exit(1);
  }
  console.error(`\n${line}\nSKIP: the hello-bot-go README test did not run: ${why}\n${line}\n`);
  skip = true;
}

/** Names, sizes and mtimes under dir (the developer's ./.arqon), to show the test left it alone. */
function snapshot(dir) {
  if (!existsSync(dir)) return "absent";
  const out = [];
  const walk = (d) => {
    for (const name of readdirSync(d).sort()) {
      const p = path.join(d, name);
      const s = statSync(p);
      out.push(`${path.relative(dir, p)} ${s.size} ${s.mtimeMs}`);
      if (s.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out.join("\n");
}

describe("hello-bot-go README", { skip }, () => {
  it("readme - the sh blocks hold the install, serve, bot, publish and history commands, comments stripped", () => {
    const commands = readmeCommands();
    const steps = flowSteps(commands);
    assert.deepEqual(commands, [steps.install, steps.serve, steps.bot, steps.publish, steps.history]);
    assert.equal(steps.serve, "npx arqon serve");
    assert.equal(steps.bot, "ARQON_TOKEN=$(npx arqon token --sub hello-bot --tenant dev) go -C apps/examples/hello-bot-go run .");
    assert.equal(steps.publish, `npx arqon publish lobby '{"text":"hi there"}' --token "$(npx arqon token --sub alice --tenant dev)"`);
    assert.equal(steps.history, "npx arqon history lobby --tenant dev");
    assert.equal(stripComment(`echo '# not a comment' "#nor this" # but this`), `echo '# not a comment' "#nor this"`);
    assert.equal(stripComment("   # only a comment"), "");
  });

  it("readme - the commands, run as written from the repository root, get the bot's answer into arqon history within 5 minutes", { timeout: FLOW_BUDGET_MS + 60_000 }, async () => {
    const devState = path.join(repoRoot, ".arqon");
    const before = snapshot(devState);
    const result = await runReadmeFlow({ root: repoRoot });
    console.log(`README flow: ${(result.ms / 1000).toFixed(1)} s (${JSON.stringify(result.timings)} ms), gateway ${result.url}`);
    assert.ok(!result.url.includes(":9100/"), `the gateway ran on ${result.url}, not on a free port`);
    const lines = result.history.split("\n");
    const hi = lines.findIndex((l) => /\balice\b/.test(l) && l.includes('{"text":"hi there"}'));
    const answer = lines.findIndex((l) => /\bhello-bot\b/.test(l) && l.includes('"text":"hello, alice!"') && l.includes('"from":"hello-bot"'));
    assert.ok(hi >= 0, `alice's hi is not in the history:\n${result.history}`);
    assert.ok(answer > hi, `the bot's answer is not in the history after alice's hi:\n${result.history}`);
    // The answer exactly as the README's comment on the history command shows it.
    const readme = readFileSync(path.join(repoRoot, "apps", "examples", "hello-bot-go", "README.md"), "utf8");
    const promised = /npx arqon history lobby[^\n]*#[^\n]*?(\{[^\n]*\})/.exec(readme)?.[1];
    assert.ok(promised, "the README's history comment shows no answer");
    assert.ok(lines[answer].includes(promised), `the README promises ${promised}, the history shows:\n${lines[answer]}`);
    assert.ok(result.ms < FLOW_BUDGET_MS, `the flow took ${result.ms} ms, over the README's five minutes`);
    assert.equal(snapshot(devState), before, "the developer's ./.arqon changed");
  });

  it("readme - a fresh git clone tracks everything the bot and the README commands use, and the bot builds there", { timeout: 240_000 }, () => {
    const clone = cloneRepo(repoRoot);
    try {
      const tracked = trackedFiles(clone.dir);
      const bot = "apps/examples/hello-bot-go";
      for (const f of ["README.md", "go.mod", "go.sum", "main.go", "bot.go", "package.json"]) assert.ok(tracked.has(`${bot}/${f}`), `${bot}/${f} is not tracked`);
      // The Go module: every file of the bot and of the SDK it replaces to is tracked (nothing generated locally).
      for (const [dir, module] of [
        [bot, "github.com/arqonbus/arqonbus/apps/examples/hello-bot-go"],
        ["packages/sdk-go", "github.com/arqonbus/arqonbus/packages/sdk-go"],
      ]) {
        assert.match(readFileSync(path.join(clone.dir, dir, "go.mod"), "utf8"), new RegExp(`^module ${module.replaceAll(".", "\\.")}$`, "m"));
        const files = execFileSync("go", ["list", "-deps", "-f", '{{if .Module}}{{if eq .Module.Path "' + module + '"}}{{range .GoFiles}}{{$.Dir}}/{{.}}\n{{end}}{{end}}{{end}}', "./..."], {
          cwd: path.join(clone.dir, dir),
          encoding: "utf8",
        })
          .split("\n")
          .filter(Boolean);
        assert.ok(files.length > 0, `go list found no files of ${module}`);
        for (const f of files) assert.ok(tracked.has(path.relative(clone.dir, f).split(path.sep).join("/")), `${f} is used by the build but not tracked`);
      }
      assert.match(readFileSync(path.join(clone.dir, bot, "go.mod"), "utf8"), /^replace github\.com\/arqonbus\/arqonbus\/packages\/sdk-go => \.\.\/\.\.\/\.\.\/packages\/sdk-go$/m);
      const out = mkdtempSync(path.join(tmpdir(), "hello-bot-go-build-"));
      try {
        execFileSync("go", ["-C", bot, "build", "-o", path.join(out, "hello-bot-go"), "."], { cwd: clone.dir, stdio: ["ignore", "inherit", "inherit"] });
        assert.ok(statSync(path.join(out, "hello-bot-go")).size > 0);
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
      // `npx arqon`: the bin is a tracked launcher; the dist it imports is built by npm ci (the root's prepare),
      // not committed, which is why the README starts with npm ci.
      assert.ok(tracked.has("packages/cli/bin/arqon.js"), "packages/cli/bin/arqon.js is not tracked");
      const cli = JSON.parse(readFileSync(path.join(clone.dir, "packages/cli/package.json"), "utf8"));
      assert.equal(cli.bin?.arqon ?? cli.bin, "./bin/arqon.js");
      assert.ok(![...tracked].some((f) => f.startsWith("packages/cli/dist/")), "packages/cli/dist is committed");
      assert.ok(!existsSync(path.join(clone.dir, "packages/cli/dist")), "the clone has a dist it did not build");
      const rootPkg = JSON.parse(readFileSync(path.join(clone.dir, "package.json"), "utf8"));
      assert.match(rootPkg.scripts.prepare, /nx run-many -t build/, "npm ci no longer builds the packages (prepare)");
      assert.ok(tracked.has("package-lock.json"), "npm ci needs the tracked lockfile");
    } finally {
      clone.remove();
    }
  });
});
