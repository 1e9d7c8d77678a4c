import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode } from "@arqon/core";
import { OutboundError, OutboundGuard } from "../src/outbound.js";

/** Names the table uses, resolved without DNS (no test traffic ever leaves loopback). */
const NAMES: Record<string, Array<{ address: string; family: 4 | 6 }>> = {
  "localhost": [{ address: "127.0.0.1", family: 4 }, { address: "::1", family: 6 }],
  "rebind.test": [{ address: "93.184.216.34", family: 4 }, { address: "10.0.0.7", family: 4 }],
  "metadata.google.internal": [{ address: "169.254.169.254", family: 4 }],
  "v6loop.test": [{ address: "::1", family: 6 }],
  "mapped.test": [{ address: "::ffff:192.168.0.1", family: 6 }],
  "public.test": [{ address: "93.184.216.34", family: 4 }],
  "public6.test": [{ address: "2606:2800:220:1:248:1893:25c8:1946", family: 6 }],
};

const resolve = async (host: string) => {
  const found = NAMES[host];
  if (!found) throw new Error(`ENOTFOUND ${host}`);
  return found;
};

/** Every hostile form the issue lists, and then some: each must be refused. */
const HOSTILE = [
  // loopback, in every notation the WHATWG parser normalizes
  "https://127.0.0.1/",
  "https://127.0.0.1:9100/api/v1/tenants",
  "https://localhost/",
  "https://LOCALHOST./",
  "https://127.1/",
  "https://0x7f000001/",
  "https://0x7f.0.0.1/",
  "https://2130706433/",
  "https://0177.0.0.1/",
  "https://017700000001/",
  "https://127.000.000.001/",
  "https://[::1]/",
  "https://[0:0:0:0:0:0:0:1]/",
  "https://v6loop.test/",
  // IPv6 forms embedding IPv4
  "https://[::ffff:127.0.0.1]/",
  "https://[::ffff:7f00:1]/",
  "https://[::127.0.0.1]/",
  "https://[::7f00:1]/",
  "https://[64:ff9b:1::a00:1]/",
  "https://[::ffff:10.0.0.1]/",
  "https://mapped.test/",
  "https://[2002:7f00:1::]/",
  "https://[2002:c0a8:101::1]/",
  "https://[64:ff9b::7f00:1]/",
  "https://[64:ff9b::a00:1]/",
  "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
  // private and link-local, cloud metadata
  "https://10.0.0.1/",
  "https://10.255.255.255/",
  "https://172.16.0.1/",
  "https://172.31.255.254/",
  "https://192.168.1.1/",
  "https://169.254.169.254/latest/meta-data/",
  "https://metadata.google.internal/computeMetadata/v1/",
  "https://[fe80::1]/",
  // CGNAT, unique-local, multicast, unspecified, broadcast, documentation, reserved
  "https://100.64.0.1/",
  "https://100.127.255.254/",
  "https://[fc00::1]/",
  "https://[fd12:3456:789a::1]/",
  "https://224.0.0.1/",
  "https://239.255.255.250/",
  "https://[ff02::1]/",
  "https://0.0.0.0/",
  "https://0/",
  "https://[::]/",
  "https://255.255.255.255/",
  "https://192.0.2.1/",
  "https://198.51.100.7/",
  "https://203.0.113.9/",
  "https://[2001:db8::1]/",
  "https://240.0.0.1/",
  "https://198.18.0.1/",
  // DNS: one of several addresses private (rebinding), or a name that does not resolve
  "https://rebind.test/",
  "https://nowhere.invalid/",
  // form
  "http://93.184.216.34/",
  "ftp://93.184.216.34/",
  "file:///etc/passwd",
  "https://user:pass@public.test/",
  "javascript:alert(1)",
  "not a url",
];

describe("outbound guard", () => {
  const guard = new OutboundGuard({ resolve });

  it(`guard - refuses ${HOSTILE.length} hostile targets with ARQ_OUTBOUND_FORBIDDEN`, async () => {
    const rows: string[] = [];
    for (const url of HOSTILE) {
      const err = await guard.check(url).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, url).toBeInstanceOf(OutboundError);
      expect((err as OutboundError).code, url).toBe(ErrorCode.OUTBOUND_FORBIDDEN);
      rows.push(`  ${url.padEnd(52)} ${(err as OutboundError).message}`);
    }
    console.log(`outbound guard: ${HOSTILE.length} hostile targets refused\n${rows.join("\n")}`);
  });

  it("guard - public https targets pass; names resolve once and every address is checked", async () => {
    expect((await guard.check("https://public.test/hook")).addresses).toEqual([{ address: "93.184.216.34", family: 4 }]);
    expect((await guard.check("https://93.184.216.34/")).host).toBe("93.184.216.34");
    expect((await guard.check("https://public6.test/")).addresses[0]!.family).toBe(6);
    expect((await guard.check("https://[::ffff:93.184.216.34]/")).host).toBe("::ffff:5db8:d822");
  });

  it("guard - the operator's allowlist admits names, addresses and CIDRs it names, and http only when allowed", async () => {
    const dev = new OutboundGuard({ resolve, allow: ["localhost", "10.0.0.0/8", "::1"], allowHttp: true });
    await expect(dev.check("http://localhost:8080/")).resolves.toMatchObject({ host: "localhost" });
    await expect(dev.check("https://10.1.2.3/")).resolves.toBeDefined();
    await expect(dev.check("https://[::1]/")).resolves.toBeDefined();
    await expect(dev.check("https://[::ffff:10.0.0.1]/")).resolves.toBeDefined();
    await expect(dev.check("https://127.0.0.1/")).rejects.toMatchObject({ code: ErrorCode.OUTBOUND_FORBIDDEN });
    await expect(dev.check("https://192.168.0.1/")).rejects.toMatchObject({ code: ErrorCode.OUTBOUND_FORBIDDEN });
    await expect(new OutboundGuard({ resolve }).check("http://public.test/")).rejects.toThrow(/only https/);
    expect(() => new OutboundGuard({ allow: ["10.0.0.0/99"] })).toThrow(/not a CIDR/);
  });
});

describe("outbound guard - real requests (loopback only)", () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise((r) => (server ? server.close(r) : r(undefined)));
    server = undefined;
  });

  async function receiver(handler: Parameters<typeof createServer>[1]): Promise<number> {
    server = createServer(handler);
    await new Promise<void>((r) => server!.listen(0, "127.0.0.1", () => r()));
    return (server.address() as AddressInfo).port;
  }

  it("request - a local receiver is reached only when allowlisted; redirects are answers, not followed; bodies are capped", async () => {
    const seen: string[] = [];
    const port = await receiver((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      if (req.url === "/redirect") {
        res.writeHead(302, { location: "http://127.0.0.1:1/elsewhere" });
        res.end();
        return;
      }
      res.end("x".repeat(100_000));
    });
    await expect(new OutboundGuard({ allowHttp: true }).request(`http://127.0.0.1:${port}/hook`)).rejects.toMatchObject({ code: ErrorCode.OUTBOUND_FORBIDDEN });
    expect(seen).toEqual([]);
    const allowed = new OutboundGuard({ allowHttp: true, allow: ["127.0.0.1"], maxResponseBytes: 1000 });
    const ok = await allowed.request(`http://127.0.0.1:${port}/hook`, { body: "{}", headers: { "content-type": "application/json" } });
    expect([ok.status, ok.body.length]).toEqual([200, 1000]);
    const redirect = await allowed.request(`http://127.0.0.1:${port}/redirect`);
    expect(redirect.status).toBe(302);
    expect(seen).toEqual(["POST /hook", "POST /redirect"]);
  });

  it("request - the connection goes to the checked address even when the name would now resolve elsewhere", async () => {
    const port = await receiver((_req, res) => res.end("pinned"));
    let calls = 0;
    // The first lookup answers loopback (allowlisted); any later one would answer a private address.
    const guard = new OutboundGuard({
      allowHttp: true,
      allow: ["127.0.0.1"],
      resolve: async () => (calls++ === 0 ? [{ address: "127.0.0.1", family: 4 }] : [{ address: "10.9.9.9", family: 4 }]),
    });
    const res = await guard.request(`http://rebinding.test:${port}/`);
    expect(res.body.toString()).toBe("pinned");
    expect(calls).toBe(1);
  });

  it("request - a hanging receiver times out as ARQ_OUTBOUND_FAILED (timeout)", async () => {
    const port = await receiver(() => undefined);
    const guard = new OutboundGuard({ allowHttp: true, allow: ["127.0.0.1"], timeoutMs: 200 });
    const err = await guard.request(`http://127.0.0.1:${port}/`).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCode.OUTBOUND_FAILED, failure: "timeout" });
  });
});
