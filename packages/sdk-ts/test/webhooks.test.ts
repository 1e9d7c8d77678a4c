import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { Webhook } from "standardwebhooks";
import { ArqonError } from "@arqon/core";
import {
  WebhookConfigError,
  WebhookErrorCode,
  WebhookVerificationError,
  signWebhook,
  verifyWebhook,
  type WebhookSignatureHeaders,
} from "../src/webhooks.js";

function newSecret(): string {
  return `whsec_${Buffer.from(crypto.getRandomValues(new Uint8Array(24))).toString("base64")}`;
}

const nowSec = (): number => Math.floor(Date.now() / 1000);
const body = JSON.stringify({ room: "lobby", id: "m-1", offset: 7, epoch: "e1", payload: { text: "héllo" } });

/** A delivery signed by the reference implementation. */
function referenceDelivery(secret: string, options: { id?: string; timestamp?: number; body?: string } = {}): Record<string, string> {
  const id = options.id ?? "msg_hook1_e1_7";
  const timestamp = options.timestamp ?? nowSec();
  const signature = new Webhook(secret).sign(id, new Date(timestamp * 1000), options.body ?? body);
  return { "webhook-id": id, "webhook-timestamp": String(timestamp), "webhook-signature": signature };
}

async function refusal(promise: Promise<unknown>): Promise<WebhookVerificationError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WebhookVerificationError);
  return err as WebhookVerificationError;
}

describe("webhooks - interoperability with the reference standardwebhooks package", () => {
  it("webhooks - a delivery signed by the reference Webhook.sign is accepted, as text and as bytes", async () => {
    const secret = newSecret();
    const headers = referenceDelivery(secret);
    const event = await verifyWebhook(secret, headers, body);
    expect(event).toEqual({ id: "msg_hook1_e1_7", timestamp: Number(headers["webhook-timestamp"]), payload: JSON.parse(body) });
    expect(await verifyWebhook(secret, headers, new TextEncoder().encode(body))).toEqual(event);
    expect(await verifyWebhook(secret, headers, Buffer.from(body))).toEqual(event);
  });

  it("webhooks - a delivery signed by signWebhook is accepted by the reference Webhook.verify", async () => {
    const secret = newSecret();
    const headers = await signWebhook(secret, { id: "msg_1", body });
    expect(Object.keys(headers)).toEqual(["webhook-id", "webhook-timestamp", "webhook-signature"]);
    expect(headers["webhook-signature"]).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    expect(Math.abs(Number(headers["webhook-timestamp"]) - nowSec())).toBeLessThanOrEqual(1);
    expect(new Webhook(secret).verify(body, { ...headers })).toEqual(JSON.parse(body));
    // The same signature the reference computes, byte for byte.
    expect(headers["webhook-signature"]).toBe(referenceDelivery(secret, { id: "msg_1", timestamp: Number(headers["webhook-timestamp"]) })["webhook-signature"]);
  });

  it("webhooks - a replay older than the tolerance is refused by ours and by the reference verifier", async () => {
    const secret = newSecret();
    const old = await signWebhook(secret, { id: "msg_old", timestamp: nowSec() - 301, body });
    const err = await refusal(verifyWebhook(secret, old, body));
    expect(err.code).toBe(WebhookErrorCode.TIMESTAMP_TOO_OLD);
    expect(err.message).toMatch(/^webhook-timestamp is 30[12] s old \(tolerance 300 s\)$/);
    expect(() => new Webhook(secret).verify(body, { ...old })).toThrow("Message timestamp too old");

    const referenceOld = referenceDelivery(secret, { timestamp: nowSec() - 301 });
    expect((await refusal(verifyWebhook(secret, referenceOld, body))).code).toBe(WebhookErrorCode.TIMESTAMP_TOO_OLD);
  });

  it("webhooks - a timestamp further in the future than the tolerance is refused by ours and by the reference verifier", async () => {
    const secret = newSecret();
    const ahead = await signWebhook(secret, { id: "msg_new", timestamp: nowSec() + 360, body });
    const err = await refusal(verifyWebhook(secret, ahead, body));
    expect(err.code).toBe(WebhookErrorCode.TIMESTAMP_TOO_NEW);
    expect(err.message).toMatch(/^webhook-timestamp is (359|360) s ahead \(tolerance 300 s\)$/);
    expect(() => new Webhook(secret).verify(body, { ...ahead })).toThrow("Message timestamp too new");
    // Milliseconds where seconds belong (a common sender mistake) land far in the future.
    const millis = { ...ahead, "webhook-timestamp": String(Date.now()) };
    expect((await refusal(verifyWebhook(secret, millis, body))).code).toBe(WebhookErrorCode.TIMESTAMP_TOO_NEW);
  });

  it("webhooks - rotation: a delivery signed with the new and the old secret verifies under either, with both verifiers", async () => {
    const [current, previous] = [newSecret(), newSecret()];
    const headers = await signWebhook([current, previous], { id: "msg_rot", body });
    expect(headers["webhook-signature"].split(" ")).toHaveLength(2);
    for (const secret of [current, previous]) {
      expect((await verifyWebhook(secret, headers, body)).id).toBe("msg_rot");
      expect(new Webhook(secret).verify(body, { ...headers })).toEqual(JSON.parse(body));
    }
    // A receiver holding both secrets accepts deliveries signed with only one of them, from either signer.
    expect((await verifyWebhook([current, previous], referenceDelivery(previous), body)).id).toBe("msg_hook1_e1_7");
    expect((await verifyWebhook([current, previous], await signWebhook(current, { id: "msg_c", body }), body)).id).toBe("msg_c");
    const err = await refusal(verifyWebhook([newSecret(), newSecret()], headers, body));
    expect(err.code).toBe(WebhookErrorCode.SIGNATURE_MISMATCH);
    expect(err.message).toBe("no webhook-signature entry matches the body under any of the 2 secrets");
  });
});

describe("webhooks - refusals", () => {
  it("webhooks - a tampered body is refused with ARQ_WEBHOOK_SIGNATURE_MISMATCH", async () => {
    const secret = newSecret();
    const headers = referenceDelivery(secret);
    const err = await refusal(verifyWebhook(secret, headers, body.replace("héllo", "hello")));
    expect(err.code).toBe("ARQ_WEBHOOK_SIGNATURE_MISMATCH");
    expect(err.message).toBe("no webhook-signature entry matches the body under the secret");
    expect(err).toBeInstanceOf(ArqonError);
    expect(err.retryable).toBe(false);
    // A changed id or timestamp is covered by the signature too.
    expect((await refusal(verifyWebhook(secret, { ...headers, "webhook-id": "msg_other" }, body))).code).toBe("ARQ_WEBHOOK_SIGNATURE_MISMATCH");
    const shifted = { ...headers, "webhook-timestamp": String(Number(headers["webhook-timestamp"]) - 1) };
    expect((await refusal(verifyWebhook(secret, shifted, body))).code).toBe("ARQ_WEBHOOK_SIGNATURE_MISMATCH");
  });

  it("webhooks - a wrong secret is refused with ARQ_WEBHOOK_SIGNATURE_MISMATCH", async () => {
    const headers = referenceDelivery(newSecret());
    const err = await refusal(verifyWebhook(newSecret(), headers, body));
    expect([err.code, err.message]).toEqual(["ARQ_WEBHOOK_SIGNATURE_MISMATCH", "no webhook-signature entry matches the body under the secret"]);
  });

  it("webhooks - a missing or empty header is refused with ARQ_WEBHOOK_HEADER_MISSING naming it", async () => {
    const secret = newSecret();
    const headers = referenceDelivery(secret);
    for (const name of ["webhook-id", "webhook-timestamp", "webhook-signature"] as const) {
      const { [name]: _dropped, ...rest } = headers;
      for (const without of [rest, { ...rest, [name]: "" }, { ...rest, [name]: [] }]) {
        const err = await refusal(verifyWebhook(secret, without, body));
        expect([err.code, err.message, err.detail]).toEqual([WebhookErrorCode.HEADER_MISSING, `the ${name} header is missing`, { header: name }]);
      }
    }
    expect(() => new Webhook(secret).verify(body, { "webhook-id": headers["webhook-id"]!, "webhook-signature": headers["webhook-signature"]! })).toThrow(
      "Missing required headers",
    );
  });

  it("webhooks - a malformed signature header is refused with ARQ_WEBHOOK_SIGNATURE_MALFORMED", async () => {
    const secret = newSecret();
    const headers = referenceDelivery(secret);
    const good = headers["webhook-signature"]!.slice(3);
    const malformed = ["garbage", "v1,", "v1", "v1,not base64!", `v1,${good.slice(0, 20)}`, `v1;${good}`, `v2,${good}`, `v1a,${good}`, `V1,${good}`];
    for (const signature of malformed) {
      const err = await refusal(verifyWebhook(secret, { ...headers, "webhook-signature": signature }, body));
      expect([err.code, err.message, err.detail], signature).toEqual([
        WebhookErrorCode.SIGNATURE_MALFORMED,
        'webhook-signature holds no "v1,<base64 HMAC-SHA256>" entry',
        { header: "webhook-signature" },
      ]);
    }
    // Unknown versions and malformed entries beside a good one are skipped, as the spec asks for forward compatibility.
    expect((await verifyWebhook(secret, { ...headers, "webhook-signature": `v1a,xyz garbage v1,${good}` }, body)).id).toBe("msg_hook1_e1_7");
  });

  it("webhooks - a timestamp that is not whole seconds is refused with ARQ_WEBHOOK_TIMESTAMP_INVALID", async () => {
    const secret = newSecret();
    const headers = referenceDelivery(secret);
    for (const timestamp of ["soon", "1700000000.5", "-1700000000", "1e9", "0x10", "12 34"]) {
      const err = await refusal(verifyWebhook(secret, { ...headers, "webhook-timestamp": timestamp }, body));
      expect([err.code, err.message, err.detail], timestamp).toEqual([
        WebhookErrorCode.TIMESTAMP_INVALID,
        "webhook-timestamp is not an integer number of seconds",
        { header: "webhook-timestamp" },
      ]);
    }
  });
});

describe("webhooks - tolerance, headers, payloads and secrets", () => {
  it("webhooks - the tolerance and the clock are options; the edge of the window is accepted", async () => {
    const secret = newSecret();
    const at = 1_700_000_000;
    const headers = await signWebhook(secret, { id: "msg_t", timestamp: at, body });
    const clock = (sec: number) => () => sec * 1000 + 999;
    expect((await verifyWebhook(secret, headers, body, { now: clock(at + 300) })).timestamp).toBe(at);
    expect((await verifyWebhook(secret, headers, body, { now: clock(at - 300) })).timestamp).toBe(at);
    expect((await refusal(verifyWebhook(secret, headers, body, { now: clock(at + 301) }))).code).toBe("ARQ_WEBHOOK_TIMESTAMP_TOO_OLD");
    expect((await refusal(verifyWebhook(secret, headers, body, { now: clock(at - 301) }))).code).toBe("ARQ_WEBHOOK_TIMESTAMP_TOO_NEW");
    expect((await refusal(verifyWebhook(secret, headers, body, { now: clock(at + 11), toleranceSec: 10 }))).detail).toEqual({
      timestamp: at,
      now: at + 11,
      toleranceSec: 10,
    });
    expect((await verifyWebhook(secret, headers, body, { now: clock(at + 3600), toleranceSec: 3600 })).id).toBe("msg_t");
  });

  it("webhooks - header names are matched in any case, in plain objects, Headers and Node's IncomingHttpHeaders", async () => {
    const secret = newSecret();
    const signed = referenceDelivery(secret);
    const shouted: Record<string, string> = {
      "Webhook-Id": signed["webhook-id"]!,
      "WEBHOOK-TIMESTAMP": signed["webhook-timestamp"]!,
      "webhook-Signature": signed["webhook-signature"]!,
      "Content-Type": "application/json",
    };
    expect((await verifyWebhook(secret, shouted, body)).id).toBe("msg_hook1_e1_7");
    expect((await verifyWebhook(secret, new Headers(shouted), body)).id).toBe("msg_hook1_e1_7");
    const node: IncomingHttpHeaders = { ...signed, "webhook-signature": ["v1a,unknown", signed["webhook-signature"]!] };
    expect((await verifyWebhook(secret, node, body)).id).toBe("msg_hook1_e1_7");
    // The reference verifier lower-cases names the same way.
    expect(new Webhook(secret).verify(body, shouted)).toEqual(JSON.parse(body));
  });

  it("webhooks - a delivery POSTed to a Node http server verifies from req.headers and the raw body", async () => {
    const secret = newSecret();
    const seen: unknown[] = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        verifyWebhook(secret, req.headers, Buffer.concat(chunks)).then(
          (event) => {
            seen.push(event.payload);
            res.writeHead(204).end();
          },
          (err: WebhookVerificationError) => res.writeHead(401).end(err.code),
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
      const headers: WebhookSignatureHeaders = await signWebhook(secret, { id: "msg_http", body });
      // Mixed-case names on the wire; Node lower-cases them and fetch sends a second signature line joined with ", ".
      const wire = new Headers({ "Webhook-Id": headers["webhook-id"], "Webhook-Timestamp": headers["webhook-timestamp"], "content-type": "application/json" });
      wire.append("Webhook-Signature", "v1a,unknown");
      wire.append("Webhook-Signature", headers["webhook-signature"]);
      expect((await fetch(url, { method: "POST", headers: wire, body })).status).toBe(204);
      expect(seen).toEqual([JSON.parse(body)]);
      const tampered = await fetch(url, { method: "POST", headers: wire, body: body.replace("lobby", "lobby2") });
      expect([tampered.status, await tampered.text()]).toEqual([401, "ARQ_WEBHOOK_SIGNATURE_MISMATCH"]);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("webhooks - the payload is the parsed JSON body, the text when it is not JSON, undefined when empty", async () => {
    const secret = newSecret();
    for (const [text, payload] of [
      ['{"a":[1,2]}', { a: [1, 2] }],
      ['"quoted"', "quoted"],
      ["42", 42],
      ["plain text, not JSON", "plain text, not JSON"],
      ["", undefined],
    ] as const) {
      const headers = await signWebhook(secret, { id: "msg_p", body: text });
      expect((await verifyWebhook(secret, headers, text)).payload, text).toEqual(payload);
    }
    const bytes = new Uint8Array([0xff, 0x00, 0x7b]);
    const headers = await signWebhook(secret, { id: "msg_b", body: bytes });
    expect((await verifyWebhook(secret, headers, bytes)).id).toBe("msg_b");
    expect((await refusal(verifyWebhook(secret, headers, new Uint8Array([0xff, 0x00, 0x7c])))).code).toBe("ARQ_WEBHOOK_SIGNATURE_MISMATCH");
  });

  it("webhooks - secrets must be whsec_<base64> or key bytes; anything else is a WebhookConfigError", async () => {
    const headers = referenceDelivery(newSecret());
    for (const secret of ["", "whsec_", "whsec_not*base64", "c2VjcmV0IGtleQ==", "plain-secret", []]) {
      const err = await verifyWebhook(secret, headers, body).catch((e: unknown) => e);
      expect(err, JSON.stringify(secret)).toBeInstanceOf(WebhookConfigError);
      expect((err as WebhookConfigError).code).toBe(WebhookErrorCode.SECRET_INVALID);
      await expect(signWebhook(secret, { id: "x", body })).rejects.toBeInstanceOf(WebhookConfigError);
    }
    // Key bytes work as the key itself; the same key as whsec_ verifies the same signature.
    const key = crypto.getRandomValues(new Uint8Array(32));
    const signed = await signWebhook(key, { id: "msg_k", body });
    expect((await verifyWebhook(`whsec_${Buffer.from(key).toString("base64")}`, signed, body)).id).toBe("msg_k");
    // Unpadded base64 after whsec_ is accepted, as the reference does.
    const unpadded = `whsec_${Buffer.from(key).toString("base64").replace(/=+$/, "")}`;
    expect((await verifyWebhook(unpadded, signed, body)).id).toBe("msg_k");
  });

  it("webhooks - signWebhook refuses a timestamp that is not whole seconds and an empty id", async () => {
    const secret = newSecret();
    await expect(signWebhook(secret, { id: "m", timestamp: Date.now() / 1000, body })).rejects.toThrow(RangeError);
    await expect(signWebhook(secret, { id: "m", timestamp: -1, body })).rejects.toThrow(RangeError);
    await expect(signWebhook(secret, { id: "", body })).rejects.toThrow("id must be a non-empty string without whitespace");
  });

  it("webhooks - @arqon/sdk/webhooks resolves to this module", async () => {
    const viaPackage = await import("@arqon/sdk/webhooks");
    expect(viaPackage.verifyWebhook).toBe(verifyWebhook);
    expect(Object.keys(viaPackage).sort()).toEqual(["WebhookConfigError", "WebhookErrorCode", "WebhookVerificationError", "signWebhook", "verifyWebhook"]);
  });
});

describe("webhooks - docs", () => {
  it("webhooks - every WebhookErrorCode is listed exactly once in docs/errors.md, in the client-side table", () => {
    const doc = readFileSync(new URL("../../../docs/errors.md", import.meta.url), "utf8");
    const table = doc.slice(doc.indexOf("## Client-side codes (SDKs)"), doc.indexOf("## Close codes"));
    for (const code of Object.values(WebhookErrorCode)) {
      expect(doc.match(new RegExp(`(?<![A-Za-z0-9_])${code}(?![A-Za-z0-9_])`, "g")), code).toHaveLength(1);
      expect(table, code).toMatch(new RegExp(`^\\| \`${code}\` \\|`, "m"));
    }
  });

  it("webhooks - the Node receiver of \"Verifying webhook deliveries\" works as written", async () => {
    const doc = readFileSync(new URL("../../../docs/sdk-ts.md", import.meta.url), "utf8");
    const section = doc.slice(doc.indexOf("## Verifying webhook deliveries"));
    const code = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
    expect(code).toContain('from "@arqon/sdk/webhooks"');
    // Inside the package's node_modules, so "@arqon/sdk/webhooks" resolves as it does for an application.
    const dir = fileURLToPath(new URL("../node_modules/.cache/arqon-doc-webhooks/", import.meta.url));
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${dir}receiver.mts`, code!);
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, "127.0.0.1", () => {
        const { port } = probe.address() as AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const secret = newSecret();
    const tsx = fileURLToPath(new URL("../../../node_modules/.bin/tsx", import.meta.url));
    const child = spawn(tsx, ["--conditions=arqon-source", `${dir}receiver.mts`], {
      // No colours: under nx, FORCE_COLOR makes console.log colour the numbers.
      env: { ...process.env, FORCE_COLOR: "0", NO_COLOR: "1", ARQON_WEBHOOK_SECRET: secret, PORT: String(port) },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    try {
      const url = `http://127.0.0.1:${port}/arqon-webhook`;
      const delivery = JSON.stringify({ room: "orders", id: "m-9", offset: 9, epoch: "e1", payload: { total: 12 } });
      const headers = { ...(await signWebhook(secret, { id: "msg_doc", body: delivery })), "content-type": "application/json" };
      const post = async (body: string, h: Record<string, string> = headers) => {
        for (let attempt = 0; ; attempt++) {
          try {
            const res = await fetch(url, { method: "POST", headers: h, body });
            return [res.status, await res.text()];
          } catch (err) {
            if (attempt > 200 || child.exitCode !== null) throw err;
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
        }
      };
      expect(await post(delivery)).toEqual([204, ""]);
      await expect.poll(() => out).toContain('msg_doc orders 9 {"total":12}');
      expect(await post(delivery.replace("12", "13"))).toEqual([401, "ARQ_WEBHOOK_SIGNATURE_MISMATCH"]);
      const { "webhook-id": _id, ...withoutId } = headers;
      expect(await post(delivery, withoutId)).toEqual([401, "ARQ_WEBHOOK_HEADER_MISSING"]);
    } finally {
      child.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
