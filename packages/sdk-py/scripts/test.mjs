#!/usr/bin/env node
// Runs the Python SDK's tests: creates packages/sdk-py/.venv on first use, installs the package with its test extras
// (again whenever pyproject.toml changes), then runs pytest against real gateways. Extra arguments go to pytest.
//
// Without a usable python3 (>= 3.10 with venv) it prints a loud SKIP and exits 0, unless ARQON_REQUIRE_PYTHON=1, which
// turns the skip into a failure. pytest's exit code 5 (no tests collected) is a failure too.
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");
const venv = join(pkg, ".venv");
const venvPython = join(venv, "bin", "python");
const stamp = join(venv, ".arqon-installed");
const required = process.env.ARQON_REQUIRE_PYTHON === "1";

function skip(why) {
  const line = "=".repeat(100);
  const verdict = required ? "FAIL (ARQON_REQUIRE_PYTHON=1)" : "SKIP";
  console.error(`\n${line}\n${verdict}: Python SDK tests did not run: ${why}\n${line}\n`);
  process.exit(required ? 1 : 0);
}

function usablePython() {
  const candidates = [process.env.PYTHON, "python3"].filter(Boolean);
  for (const python of candidates) {
    const probe = spawnSync(python, ["-c", "import sys, venv, ensurepip; sys.exit(0 if sys.version_info >= (3, 10) else 3)"], {
      encoding: "utf8",
    });
    if (probe.status === 0) return python;
  }
  return undefined;
}

if (!existsSync(venvPython)) {
  const python = usablePython();
  if (!python) skip("no python3 >= 3.10 with the venv and ensurepip modules (Debian: apt-get install python3-venv)");
  console.log(`sdk-py: creating ${venv}`);
  const made = spawnSync(python, ["-m", "venv", venv], { stdio: "inherit" });
  if (made.status !== 0) skip(`"${python} -m venv" failed`);
}

const digest = createHash("sha256").update(readFileSync(join(pkg, "pyproject.toml"))).digest("hex");
if (!existsSync(stamp) || readFileSync(stamp, "utf8") !== digest) {
  console.log("sdk-py: pip install -e '.[test]'");
  execFileSync(venvPython, ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", ".[test]"], {
    cwd: pkg,
    stdio: "inherit",
  });
  writeFileSync(stamp, digest);
}

const env = { ...process.env };
delete env.PYTHONPATH;
const run = spawnSync(venvPython, ["-m", "pytest", ...process.argv.slice(2)], { cwd: pkg, stdio: "inherit", env });
if (run.status === 5) {
  console.error("sdk-py: FAIL: pytest collected no tests");
  process.exit(1);
}
process.exit(run.status ?? 1);
