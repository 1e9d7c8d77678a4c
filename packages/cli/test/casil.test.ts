import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode } from "@arqon/core";
import { CasilController } from "@arqon/server";
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

const KEY = "casil-cli-operator-key-0123456789abc";

describe("cli - arqon casil", () => {
  it("casil reload - a tenant admin's file goes to its own layer; others AUTHORIZATION_ERROR, bad files VALIDATION_ERROR, the baseline untouched", async () => {
    casil = await CasilController.create({ policy: { mode: "monitor" } });
    gw = await startGateway({ casil, operatorKeys: [KEY] });
    dir = mkdtempSync(path.join(tmpdir(), "arqon-casil-cli-"));
    const good = path.join(dir, "casil.yaml");
    writeFileSync(good, "mode: enforce\nmaxPayloadBytes: 2048\npatterns:\n  - name: sql\n    pattern: 'drop\\s+table'\n    flags: i\n");
    const bad = path.join(dir, "bad.yaml");
    writeFileSync(bad, "mode: enforce\npatterns:\n  - name: evil\n    pattern: '(a)\\1'\n");
    const admin = await gw.token({ sub: "root", role: "admin" });
    const user = await gw.token({ sub: "alice" });
    const ctx = { env: {}, cwd: dir };

    const ok = capture();
    expect(await casilCommand(["reload", "--file", good, "--url", gw.url, "--token", admin], ok.io, ctx)).toBe(0);
    expect(ok.out).toEqual(["casil layer of tenant acme reloaded: version 1 (was 0): layer created; mode: unset -> enforce; maxPayloadBytes: unset -> 2048; patterns: +1"]);
    expect(gw.server.casil!.layerVersion("acme")).toBe(1);
    expect(casil.version).toBe(1);

    const refused = capture();
    expect(await casilCommand(["reload", "--file", good, "--url", gw.url, "--token", user], refused.io, ctx)).toBe(1);
    expect(refused.err[0]).toBe(`arqon casil: ${ErrorCode.AUTHORIZATION_ERROR}: "op.casil.reload" is admin-only`);

    const invalid = capture();
    expect(await casilCommand(["reload", "--file", bad, "--url", gw.url, "--token", admin], invalid.io, ctx)).toBe(1);
    expect(invalid.err[0]).toMatch(new RegExp(`^arqon casil: ${ErrorCode.VALIDATION_ERROR}: invalid CASIL policy: .*backreferences are not allowed`));
    expect(gw.server.casil!.layerVersion("acme")).toBe(1);

    const dry = capture();
    expect(await casilCommand(["reload", "--mode", "monitor", "--dry-run", "--url", gw.url, "--token", admin], dry.io, ctx)).toBe(0);
    expect(dry.out[0]).toBe("dry run: casil layer of tenant acme would become version 2 (is 1): mode: enforce -> monitor");
    expect(gw.server.casil!.layerVersion("acme")).toBe(1);

    const got = capture();
    expect(await casilCommand(["get", "--url", gw.url, "--token", admin, "--json"], got.io, ctx)).toBe(0);
    expect(JSON.parse(got.out[0]!)).toMatchObject({ baseline: { version: 1, mode: "monitor" }, layer: { version: 1 } });

    const usage = capture();
    await expect(casilCommand(["reload", "--url", gw.url], usage.io, ctx)).rejects.toThrow(/exactly one of --file F, --mode/);
    const missing = capture();
    expect(await casilCommand(["reload", "--file", path.join(dir, "nope.yaml"), "--url", gw.url, "--token", admin], missing.io, ctx)).toBe(1);
    expect(missing.err[0]).toMatch(/cannot read .*nope\.yaml: ENOENT/);
    const noCredential = capture();
    expect(await casilCommand(["get", "--url", gw.url], noCredential.io, ctx)).toBe(1);
    expect(noCredential.err[0]).toBe(`arqon casil: ${ErrorCode.AUTH_MISSING}: an operator key or a bearer token is required`);
  });

  it("casil - the operator reloads the baseline and any tenant's layer over the server API; a tenant admin only its own", async () => {
    casil = await CasilController.create({ policy: { mode: "monitor" } });
    gw = await startGateway({ casil, operatorKeys: [KEY] });
    dir = mkdtempSync(path.join(tmpdir(), "arqon-casil-cli-"));
    const ctx = { env: { ARQON_OPERATOR_KEY: KEY }, cwd: dir };
    const base = capture();
    expect(await casilCommand(["reload", "--baseline", "--mode", "enforce", "--url", gw.httpUrl], base.io, ctx)).toBe(0);
    expect(base.out).toEqual(["casil baseline reloaded: version 2 (was 1)"]);
    expect(casil.engine.settingsFor("anyone").mode).toBe("enforce");
    const layer = capture();
    expect(await casilCommand(["reload", "--tenant", "beta", "--mode", "enforce", "--url", gw.httpUrl], layer.io, ctx)).toBe(0);
    expect(gw.server.casil!.layerVersion("beta")).toBe(1);
    const other = await gw.token({ sub: "root", role: "admin", tenant: "acme" });
    const refused = capture();
    expect(await casilCommand(["get", "--tenant", "beta", "--url", gw.httpUrl, "--token", other], refused.io, { env: {}, cwd: dir })).toBe(1);
    expect(refused.err[0]).toMatch(new RegExp(`^arqon casil: ${ErrorCode.FORBIDDEN}:`));
    const cleared = capture();
    expect(await casilCommand(["reload", "--tenant", "beta", "--clear", "--url", gw.httpUrl], cleared.io, ctx)).toBe(0);
    expect(gw.server.casil!.layerVersion("beta")).toBeUndefined();
  });
});
