import { afterEach, expect, it } from "vitest";
import { ErrorCode } from "@arqon/core";
import { serveInProcess, type ServedGateway } from "./helpers/serve.js";

const SECRET = "serve-api-rate-secret-0123456789abcdef0";
const KEY = "serve-api-rate-operator-key-0123456789";

let gw: ServedGateway | undefined;
afterEach(async () => {
  await gw?.stop();
  gw = undefined;
});

async function status(path: string, auth: string): Promise<{ status: number; retryAfter: string | null; code?: string }> {
  const res = await fetch(`${gw!.httpUrl}${path}`, { headers: { authorization: `Bearer ${auth}` } });
  const body = (await res.json()) as { error?: { code: string } };
  return { status: res.status, retryAfter: res.headers.get("retry-after"), ...(body.error ? { code: body.error.code } : {}) };
}

it("serve - --api-rate and --api-burst set the server API's per-credential limit: 429 with Retry-After past it", async () => {
  gw = await serveInProcess(["--memory", "--api-rate", "1/s", "--api-burst", "2"], { ARQON_JWT_SECRET: SECRET, ARQON_OPERATOR_KEY: KEY, ARQON_LOG_LEVEL: "silent" });
  expect((await status("/api/v1/tenants", KEY)).status).toBe(200);
  expect((await status("/api/v1/tenants", KEY)).status).toBe(200);
  expect(await status("/api/v1/tenants", KEY)).toEqual({ status: 429, retryAfter: "1", code: ErrorCode.RATE_LIMITED });
});

it("serve - ARQON_API_RATE works like the flag, and a bad value stops serve with a message", async () => {
  gw = await serveInProcess(["--memory"], { ARQON_JWT_SECRET: SECRET, ARQON_OPERATOR_KEY: KEY, ARQON_LOG_LEVEL: "silent", ARQON_API_RATE: "1", ARQON_API_BURST: "1" });
  expect((await status("/api/v1/tenants", KEY)).status).toBe(200);
  expect((await status("/api/v1/tenants", KEY)).status).toBe(429);
  await gw.stop();
  gw = undefined;
  await expect(serveInProcess(["--memory", "--api-rate", "fast"], { ARQON_JWT_SECRET: SECRET, ARQON_OPERATOR_KEY: KEY, ARQON_LOG_LEVEL: "silent" })).rejects.toThrow(
    /--api-rate: "fast" is not a rate per second/,
  );
});
