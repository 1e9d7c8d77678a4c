#!/usr/bin/env node
// One version for the release: the six npm packages (a `fixed` group in .changeset/config.json) and the Python SDK.
// `node scripts/versions.mjs` writes @arqon/core's version into the Python SDK (pyproject.toml, SDK_VERSION) after
// `changeset version`; `--check` (CI) fails when any package, internal dependency range or Python file disagrees.
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { PUBLISHABLE_DIRS as PACKAGES } from "./packages.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const WORKSPACES = [...PACKAGES, "bench", "apps/examples/browser-chat", "apps/examples/hello-bot-ts", "apps/examples/casil-wasm-policy"];
const PYTHON = [
  { file: "packages/sdk-py/pyproject.toml", re: /^version = "([^"]+)"$/m, put: (v) => `version = "${v}"` },
  { file: "packages/sdk-py/src/arqon/client.py", re: /^SDK_VERSION = "([^"]+)"$/m, put: (v) => `SDK_VERSION = "${v}"` },
];

const read = (rel) => readFileSync(path.join(root, rel), "utf8");
const pkg = (dir) => JSON.parse(read(`${dir}/package.json`));
const version = pkg("packages/core").version;
const names = new Set(PACKAGES.map((d) => pkg(d).name));
const problems = [];

for (const dir of PACKAGES) {
  const p = pkg(dir);
  if (p.version !== version) problems.push(`${p.name} is ${p.version}, @arqon/core is ${version} (one release versions them together)`);
}
for (const dir of WORKSPACES) {
  const p = pkg(dir);
  for (const field of ["dependencies", "devDependencies", "peerDependencies", "optionalDependencies"]) {
    for (const [name, range] of Object.entries(p[field] ?? {})) {
      if (names.has(name) && range !== `^${version}`) problems.push(`${p.name}: ${field}.${name} is "${range}", expected "^${version}"`);
    }
  }
}

const check = process.argv.includes("--check");
for (const { file, re, put } of PYTHON) {
  const text = read(file);
  const found = re.exec(text)?.[1];
  if (found === undefined) problems.push(`${file}: no version line matching ${re}`);
  else if (found !== version) {
    if (check) problems.push(`${file} says ${found}, the release is ${version} (run node scripts/versions.mjs)`);
    else writeFileSync(path.join(root, file), text.replace(re, put(version)));
  }
}

if (problems.length > 0) {
  for (const p of problems) console.error(`versions: ${p}`);
  process.exit(1);
}
console.log(`versions: every package is ${version}${check ? "" : " (Python SDK written)"}`);
