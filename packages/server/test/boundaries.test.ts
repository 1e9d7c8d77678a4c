import path from "node:path";
import { fileURLToPath } from "node:url";
import { ESLint } from "eslint";
import { beforeAll, describe, expect, it } from "vitest";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const coreFile = path.join(repoRoot, "packages/core/src/__boundary-fixture__.ts");
const serverFile = path.join(repoRoot, "packages/server/src/__boundary-fixture__.ts");

let eslint: ESLint;

async function ruleErrors(code: string, filePath: string) {
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).filter((m) => m.severity === 2).map((m) => ({ ruleId: m.ruleId, message: m.message }));
}

describe("lint boundaries", () => {
  beforeAll(() => {
    eslint = new ESLint({ cwd: repoRoot });
  });

  it("boundaries - core may not import ws", async () => {
    const errors = await ruleErrors('import WebSocket from "ws";\nexport { WebSocket };\n', coreFile);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.ruleId).toBe("no-restricted-imports");
    expect(errors[0]?.message).toContain("'ws' import is restricted");
    expect(errors[0]?.message).toContain("isomorphic");
  });

  it("boundaries - core may not import node: built-ins", async () => {
    const errors = await ruleErrors('import { readFile } from "node:fs";\nexport { readFile };\n', coreFile);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.ruleId).toBe("no-restricted-imports");
    expect(errors[0]?.message).toContain("'node:fs' import is restricted");
  });

  it("boundaries - core may not import bare built-ins or other @arqon packages", async () => {
    const errors = await ruleErrors(
      'import { createHash } from "crypto";\nimport { DEFAULT_PORT } from "@arqon/server";\nexport { createHash, DEFAULT_PORT };\n',
      coreFile,
    );
    expect(errors.map((e) => e.ruleId)).toEqual(["no-restricted-imports", "no-restricted-imports"]);
    expect(errors[0]?.message).toContain("'crypto' import is restricted");
    expect(errors[1]?.message).toContain("'@arqon/server' import is restricted");
  });

  it("boundaries - core may not use Buffer", async () => {
    const errors = await ruleErrors("export const b = Buffer.from([1]);\n", coreFile);
    expect(errors.map((e) => e.ruleId)).toEqual(["no-restricted-globals"]);
  });

  it("boundaries - the server may use Node built-ins and ws", async () => {
    const errors = await ruleErrors(
      'import { readFile } from "node:fs";\nimport WebSocket from "ws";\nexport { readFile, WebSocket };\n',
      serverFile,
    );
    expect(errors).toEqual([]);
  });

  it("boundaries - no package imports another package's src or dist", async () => {
    const errors = await ruleErrors(
      'import { a } from "@arqon/core/src/frame/types";\nimport { b } from "@arqon/sdk/dist/index.js";\nexport { a, b };\n',
      serverFile,
    );
    expect(errors.map((e) => e.ruleId)).toEqual(["no-restricted-imports", "no-restricted-imports"]);
    expect(errors[0]?.message).toContain("'@arqon/core/src/frame/types' import is restricted");
    expect(errors[1]?.message).toContain("'@arqon/sdk/dist/index.js' import is restricted");
  });

  it("boundaries - no relative import climbs into a sibling package", async () => {
    const errors = await ruleErrors('import { a } from "../../core/src/index";\nexport { a };\n', serverFile);
    expect(errors.map((e) => e.ruleId)).toEqual(["arqon/no-cross-package-relative"]);
    expect(errors[0]?.message).toContain("packages/core");
  });

  it("boundaries - relative imports inside the own package are fine", async () => {
    const errors = await ruleErrors('import { DEFAULT_PORT } from "./index.js";\nexport { DEFAULT_PORT };\n', serverFile);
    expect(errors).toEqual([]);
  });
});
