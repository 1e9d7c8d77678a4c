import { afterEach, expect, it } from "vitest";
import { consoleEnabled } from "../src/commands/serve.js";
import { serveInProcess, type ServedGateway } from "./helpers/serve.js";

const SECRET = "serve-console-secret-0123456789abcdef01";
const KEY = "serve-console-operator-key-0123456789ab";

let gw: ServedGateway | undefined;
afterEach(async () => {
  await gw?.stop();
  gw = undefined;
});

async function consoleStatus(g: ServedGateway): Promise<number> {
  const res = await fetch(`${g.httpUrl}/console`);
  await res.arrayBuffer();
  return res.status;
}

it("serve - the console is on in dev mode, says so in the banner, and --no-console turns it off", async () => {
  gw = await serveInProcess(["--memory"], { ARQON_LOG_LEVEL: "silent" });
  expect(await consoleStatus(gw)).toBe(200);
  expect(gw.out.some((l) => l.includes(`Console    ${gw!.httpUrl}/console`))).toBe(true);
  await gw.stop();
  gw = await serveInProcess(["--memory", "--no-console"], { ARQON_LOG_LEVEL: "silent" });
  expect(await consoleStatus(gw)).toBe(404);
  expect(gw.out.some((l) => l.includes("Console"))).toBe(false);
});

it("serve - with a configured key the console is off unless --console or ARQON_CONSOLE=1", async () => {
  const env = { ARQON_JWT_SECRET: SECRET, ARQON_OPERATOR_KEY: KEY, ARQON_LOG_LEVEL: "silent" };
  gw = await serveInProcess(["--memory"], env);
  expect(await consoleStatus(gw)).toBe(404);
  await gw.stop();
  gw = await serveInProcess(["--memory"], { ...env, ARQON_CONSOLE: "1" });
  expect(await consoleStatus(gw)).toBe(200);
  await gw.stop();
  gw = undefined;
  await expect(serveInProcess(["--memory"], { ...env, ARQON_CONSOLE: "maybe" })).rejects.toThrow(/ARQON_CONSOLE: "maybe" is not 1 or 0/);
});

it("serve - consoleEnabled: flag, then variable, then config, then dev mode", () => {
  expect(consoleEnabled(undefined, undefined, undefined, undefined, true)).toBe(true);
  expect(consoleEnabled(undefined, undefined, undefined, undefined, false)).toBe(false);
  expect(consoleEnabled(true, undefined, "0", false, false)).toBe(true);
  expect(consoleEnabled(undefined, true, "1", true, true)).toBe(false);
  expect(consoleEnabled(undefined, undefined, "yes", false, false)).toBe(true);
  expect(consoleEnabled(undefined, undefined, "0", true, true)).toBe(false);
  expect(consoleEnabled(undefined, undefined, undefined, true, false)).toBe(true);
  expect(consoleEnabled(undefined, undefined, "", false, true)).toBe(false);
  expect(() => consoleEnabled(true, true, undefined, undefined, false)).toThrow(/not both/);
});
