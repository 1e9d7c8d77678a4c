import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode } from "@arqon/core";
import { startGateway, type TestGateway } from "../src/testing.js";

const wscatBin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../node_modules/wscat/bin/wscat");

interface Terminal {
  child: ChildProcessWithoutNullStreams;
  lines: string[];
  type(line: string): void;
  waitFor(predicate: (frame: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
}

let gw: TestGateway | undefined;
const terminals: Terminal[] = [];
afterEach(async () => {
  for (const t of terminals.splice(0)) t.child.kill("SIGKILL");
  await gw?.close();
  gw = undefined;
});

/** A wscat process as a newcomer would run it: `npx wscat -c "<url>"`, typing lines, reading `<` lines. */
function wscat(url: string): Terminal {
  const child = spawn(process.execPath, [wscatBin, "-c", url], { stdio: ["pipe", "pipe", "pipe"] });
  const lines: string[] = [];
  let buffered = "";
  const waiters = new Set<() => void>();
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk: string) => {
    buffered += chunk;
    const parts = buffered.split("\n");
    buffered = parts.pop()!;
    lines.push(...parts.filter((l) => l.trim().length > 0));
    for (const w of waiters) w();
  });
  const t: Terminal = {
    child,
    lines,
    type: (line) => child.stdin.write(`${line}\n`),
    waitFor(predicate, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        let seen = 0;
        const check = () => {
          for (; seen < lines.length; seen++) {
            // wscat's readline prompt ("> ") and color resets share stdout with the frames; take the JSON object.
            const line = lines[seen]!;
            const start = line.indexOf("{");
            const end = line.lastIndexOf("}");
            if (start < 0 || end < start) continue;
            let frame: Record<string, unknown>;
            try {
              frame = JSON.parse(line.slice(start, end + 1)) as Record<string, unknown>;
            } catch {
              continue;
            }
            if (predicate(frame)) {
              waiters.delete(check);
              clearTimeout(timer);
              resolve(frame);
              return;
            }
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`wscat printed no matching frame within ${timeoutMs} ms: ${lines.join(" | ")}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
  };
  terminals.push(t);
  return t;
}

describe("wscat walkthrough", () => {
  it("walkthrough - two wscat terminals: subscribe, publish, see it arrive; a bad message is refused", async () => {
    gw = await startGateway();
    const token = await gw.token({ sub: "alice", tenant: "dev" });
    const url = `${gw.url}?token=${token}`;

    const one = wscat(url);
    expect(await one.waitFor((f) => f.type === "welcome")).toMatchObject({ tenant: "dev", protocol: "1.0" });
    one.type('{"type":"subscribe","room":"lobby","requestId":"1"}');
    expect(await one.waitFor((f) => f.type === "subscribed")).toMatchObject({ requestId: "1", room: "lobby" });

    const two = wscat(url);
    await two.waitFor((f) => f.type === "welcome");
    two.type('{"type":"publish","room":"lobby","payload":{"text":"hi"},"requestId":"2"}');
    expect(await two.waitFor((f) => f.type === "ack")).toMatchObject({ requestId: "2", room: "lobby", offset: 1 });

    const message = await one.waitFor((f) => f.type === "message");
    expect(message).toMatchObject({ room: "lobby", payload: { text: "hi" }, sender: "alice", offset: 1 });

    two.type('{"type":"publish","room":"lobby"}');
    const refused = await two.waitFor((f) => f.type === "error");
    expect(refused.error).toMatchObject({ code: ErrorCode.FRAME_MISSING_FIELD, message: 'publish needs "payload"' });
    two.type("this is not json");
    expect((await two.waitFor((f) => f.type === "error" && (f.error as { code: string }).code === ErrorCode.FRAME_MALFORMED)).type).toBe("error");
    expect(one.lines.filter((l) => l.includes('"type":"message"'))).toHaveLength(1);
  }, 20_000);
});
