import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode } from "@arqon/core";
import { CasilController, registerCasilCommands } from "@arqon/server";
import { startGateway, type TestGateway } from "@arqon/server/testing";
import { casilCommand } from "../src/commands/casil.js";

let gw: TestGateway | undefined;
let casil: CasilController | undefined;
let dir: string | undefined;
afterEach(async () => {
  await gw?.close();
  await casil?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  gw = casil = dir = undefined;
});

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l) } };
}

describe("cli - arqon casil", () => {
  it("casil reload - sends the file to op.casil.reload; admin gets the new version, others AUTHORIZATION_ERROR, bad files VALIDATION_ERROR", async () => {
    casil = await CasilController.create({ policy: { mode: "monitor" } });
    gw = await startGateway({ inspector: casil });
    registerCasilCommands(gw.server, casil);
    dir = mkdtempSync(path.join(tmpdir(), "arqon-casil-cli-"));
    const good = path.join(dir, "casil.yaml");
    writeFileSync(good, "mode: enforce\nmaxPayloadBytes: 2048\npatterns:\n  - name: sql\n    pattern: 'drop\\s+table'\n    flags: i\n");
    const bad = path.join(dir, "bad.yaml");
    writeFileSync(bad, "mode: enforce\npatterns:\n  - name: evil\n    pattern: '(a+)+$'\n");
    const admin = await gw.token({ sub: "root", role: "admin" });
    const user = await gw.token({ sub: "alice" });

    const ok = capture();
    expect(await casilCommand(["reload", "--file", good, "--url", gw.url, "--token", admin], ok.io)).toBe(0);
    expect(ok.out).toEqual(["casil policy reloaded: version 2 (was 1)"]);
    expect(casil.engine.settingsFor("acme")).toMatchObject({ mode: "enforce", maxPayloadBytes: 2048 });

    const refused = capture();
    expect(await casilCommand(["reload", "--file", good, "--url", gw.url, "--token", user], refused.io)).toBe(1);
    expect(refused.err[0]).toBe(`arqon casil: ${ErrorCode.AUTHORIZATION_ERROR}: "op.casil.reload" is admin-only`);

    const invalid = capture();
    expect(await casilCommand(["reload", "--file", bad, "--url", gw.url, "--token", admin], invalid.io)).toBe(1);
    expect(invalid.err[0]).toMatch(new RegExp(`^arqon casil: ${ErrorCode.VALIDATION_ERROR}: invalid CASIL policy: .*nested quantifier`));
    expect(casil.version).toBe(2);

    const got = capture();
    expect(await casilCommand(["get", "--url", gw.url, "--token", admin, "--json"], got.io)).toBe(0);
    expect(JSON.parse(got.out[0]!)).toMatchObject({ version: 2, mode: "enforce", source: "command" });

    const usage = capture();
    expect(await casilCommand(["reload", "--url", gw.url], usage.io)).toBe(2);
    expect(usage.err[0]).toMatch(/^usage: arqon casil reload --file F/);
    const missing = capture();
    expect(await casilCommand(["reload", "--file", path.join(dir, "nope.yaml"), "--url", gw.url, "--token", admin], missing.io)).toBe(1);
    expect(missing.err[0]).toMatch(/cannot read .*nope\.yaml: ENOENT/);
    const noToken = capture();
    expect(await casilCommand(["get", "--url", gw.url], noToken.io, {})).toBe(1);
    expect(noToken.err[0]).toMatch(/^arqon casil: connection refused with HTTP 401: ARQ_AUTH_MISSING/);
  });
});
