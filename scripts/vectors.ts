// Writes proto/vectors/*.json: JSON frames with their protobuf twins (base64), decoded by the TS and Python tests.
// Run by `npm run proto`; the frames below are the source, the files are generated.
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import { fileURLToPath } from "node:url";
import { decodeJson, decodeProto, encodeJson, encodeProto, expandMessage, toBase64, type Frame } from "../packages/core/src/index.ts";

const dir = join(dirname(fileURLToPath(import.meta.url)), "../proto/vectors");
const dir11 = join(dir, "1.1");

const frames: Record<string, { description: string; json: unknown }> = {
  hello: { description: "client introduces itself", json: { type: "hello", requestId: "r1", version: "arqon-sdk-ts/1.0.0" } },
  welcome: {
    description: "first frame after the upgrade",
    json: {
      type: "welcome",
      clientId: "c_8f3a",
      version: "0.1.0",
      limits: { maxPayloadBytes: 1048576, maxSubscriptions: 100, publishRatePerSecond: 50, publishBurst: 100, pingIntervalMs: 25000, pongTimeoutMs: 10000, maxPresenceInfoBytes: 1024, maxPendingBytes: 4194304 },
      expiresAt: 1767225600000,
      protocol: "1.0",
    },
  },
  subscribe: { description: "join a room", json: { type: "subscribe", requestId: "r2", room: "lobby" } },
  subscribe_recover: {
    description: "join a room recovering after a known position, with deltas",
    json: { type: "subscribe", requestId: "r3", room: "ticker:eurusd", since: { offset: 41, epoch: "e7c1" }, delta: true },
  },
  subscribed: {
    description: "subscription confirmed with members and state",
    json: {
      type: "subscribed",
      requestId: "r3",
      room: "lobby",
      offset: 57,
      epoch: "e7c1",
      recovered: true,
      members: [{ clientId: "c_1", userId: "alice", info: { name: "Alice", status: "here" }, joinedAt: 1767225600000 }],
      state: [{ key: "mode", value: "quiz", version: 3, updatedAt: 1767225600000, updatedBy: "bob" }],
    },
  },
  subscribed_not_recovered: {
    description: "recovery refused: the position is older than what is kept",
    json: { type: "subscribed", requestId: "r4", room: "lobby", offset: 5000, epoch: "e7c1", recovered: false, reason: "retention_exceeded" },
  },
  unsubscribe: { description: "leave a room", json: { type: "unsubscribe", requestId: "r5", room: "lobby" } },
  unsubscribed: { description: "the server ended a subscription", json: { type: "unsubscribed", room: "lobby", reason: "kicked" } },
  publish: {
    description: "publish a JSON payload with headers and an idempotency key",
    json: { type: "publish", requestId: "r6", room: "lobby", payload: { text: "hi", n: [1, 2.5, null, true] }, headers: { "x-twist-id": "draft-2" }, idempotencyKey: "k-1", echo: true },
  },
  publish_binary: {
    description: "publish raw bytes",
    json: { type: "publish", requestId: "r7", room: "files", payload: "AAECA/8=", payloadFormat: "binary" },
  },
  publish_scalar: { description: "payloads are any JSON value", json: { type: "publish", room: "count", payload: 42 } },
  ack: { description: "publish accepted", json: { type: "ack", requestId: "r6", room: "lobby", id: "m_01", offset: 58, epoch: "e7c1" } },
  "ack-duplicate": {
    description: "a publish repeated with the same idempotencyKey: acked with the first message's id and offset, not stored again",
    json: { type: "ack", requestId: "r7", room: "lobby", id: "m_01", offset: 58, epoch: "e7c1", duplicate: true },
  },
  message: {
    description: "a delivered room message",
    json: {
      type: "message",
      id: "m_01",
      room: "lobby",
      payload: { text: "héllo ✓ 🚀" },
      headers: { "x-timestamp": "1767225600123", "x-twist-id": "main" },
      offset: 58,
      epoch: "e7c1",
      timestamp: 1767225600123,
      sender: "alice",
    },
  },
  message_delta: {
    description: "a delta message (payload is a delta against the previous one)",
    json: { type: "message", id: "m_02", room: "ticker", payload: "AQID", payloadFormat: "binary", offset: 59, epoch: "e7c1", delta: true },
  },
  presence_join: { description: "a member joined", json: { type: "presence_join", room: "lobby", members: [{ clientId: "c_2", userId: "bob", joinedAt: 1767225600000 }] } },
  presence_leave: { description: "a member left", json: { type: "presence_leave", room: "lobby", members: [{ clientId: "c_2", userId: "bob" }], reason: "ping_timeout" } },
  presence_diff: {
    description: "coalesced churn",
    json: { type: "presence_diff", room: "stadium", joined: [{ clientId: "c_3", userId: "carol" }], left: [{ clientId: "c_4", userId: "dan" }, { clientId: "c_5", userId: "erin" }] },
  },
  presence_list: { description: "who is here?", json: { type: "presence_list", requestId: "r8", room: "lobby" } },
  presence: { description: "the member list", json: { type: "presence", requestId: "r8", room: "lobby", members: [{ clientId: "c_1", userId: "alice", connections: 2 }] } },
  presence_set: { description: "update my presence metadata", json: { type: "presence_set", requestId: "r9", room: "lobby", info: { info: { status: "away" } } } },
  state_get: { description: "read room state as of a time", json: { type: "state_get", requestId: "r10", room: "lobby", timestamp: 1767225600000 } },
  state: { description: "state snapshot", json: { type: "state", requestId: "r10", room: "lobby", state: [{ key: "mode", value: "lecture", version: 2 }] } },
  state_set: {
    description: "compare-and-set a key, delete another",
    json: { type: "state_set", requestId: "r11", room: "lobby", state: [{ key: "mode", value: "quiz", ifVersion: 2 }, { key: "topic", deleted: true }] },
  },
  state_set_create: { description: "create a key that must not exist (ifVersion 0)", json: { type: "state_set", room: "lobby", state: [{ key: "owner", value: "alice", ifVersion: 0 }] } },
  state_changed: { description: "state changed", json: { type: "state_changed", room: "lobby", state: [{ key: "mode", value: "quiz", version: 3, updatedBy: "alice" }] } },
  command: { description: "run a command", json: { type: "command", requestId: "r12", command: "op.casil.reload", args: { mode: "enforce" } } },
  response_ok: { description: "command result", json: { type: "response", requestId: "r12", status: "ok", payload: { version: 4 } } },
  response_error: {
    description: "command refused",
    json: { type: "response", requestId: "r12", status: "error", error: { code: "AUTHORIZATION_ERROR", message: "admin only" } },
  },
  history: {
    description: "page backwards through a timeline",
    json: { type: "history", requestId: "r13", room: "lobby", history: { toOffset: 58, limit: 20, reverse: true, twistId: "main" } },
  },
  history_page: {
    description: "a page of history",
    json: {
      type: "history_page",
      requestId: "r13",
      room: "lobby",
      offset: 58,
      epoch: "e7c1",
      messages: [{ type: "message", id: "m_01", room: "lobby", payload: { text: "hi" }, offset: 58, epoch: "e7c1", timestamp: 1767225600123 }],
    },
  },
  error: {
    description: "a request failed",
    json: { type: "error", requestId: "r6", error: { code: "ARQ_RATE_LIMITED", message: "publish rate exceeded", retryable: true } },
  },
  error_casil: {
    description: "CASIL blocked a publish",
    json: { type: "error", requestId: "r14", room: "lobby", error: { code: "CASIL_POLICY_BLOCKED_SECRET", message: "payload contains a probable secret" } },
  },
  message_inspected: {
    description: "a delivered message with CASIL decision metadata",
    json: { type: "message", room: "support", payload: { text: "card [REDACTED]" }, offset: 3, epoch: "e1", inspection: { decision: "redact", reasonCode: "CASIL_POLICY_REDACTED", flags: ["contains_probable_secret"], policyVersion: 7 } },
  },
  ping: { description: "keepalive", json: { type: "ping", requestId: "p1" } },
  pong: { description: "keepalive answer", json: { type: "pong", requestId: "p1" } },
  auth: { description: "refresh the token", json: { type: "auth", requestId: "r15", token: "eyJhbGciOiJIUzI1NiJ9.e30.sig" } },
  auth_ok: { description: "token refreshed", json: { type: "auth_ok", requestId: "r15", expiresAt: 1767229200000 } },
  rpc: { description: "ask the application backend to run a method (rpc proxy hook)", json: { type: "rpc", requestId: "r16", method: "profile.get", data: { id: 7 } } },
  rpc_result: { description: "the backend's answer to an rpc", json: { type: "rpc_result", requestId: "r16", data: { name: "Alice", id: 7 } } },
};

mkdirSync(dir, { recursive: true });
for (const f of readdirSync(dir)) if (f.endsWith(".json")) rmSync(join(dir, f));
for (const [name, { description, json }] of Object.entries(frames)) {
  const decoded = decodeJson(JSON.stringify(json), { from: "any" });
  if (!decoded.ok) throw new Error(`vector ${name}: ${decoded.error.code} ${decoded.error.message}`);
  const canonical = JSON.parse(encodeJson(decoded.frame));
  if (!isDeepStrictEqual(canonical, json)) {
    throw new Error(`vector ${name} is not canonical:\n${JSON.stringify(json)}\n${JSON.stringify(canonical)}`);
  }
  const binary = toBase64(encodeProto(decoded.frame));
  writeFileSync(join(dir, `${name}.json`), JSON.stringify({ name, description, json: canonical, protobuf: binary }, null, 2) + "\n");
}

// Protocol 1.1: what the server sends on a 1.1 connection for frames that carry messages (docs/protocol.md, "Protocol
// 1.1"). Each vector names the 1.0 frame (`expanded`), the epoch the subscription knows (`epoch`), and whether the
// message carries its epoch; the generated file holds the 1.1 JSON text (parsed), its protobuf twin, and `expanded`:
// the 1.0 JSON face a client gets back with `expandMessage` (epoch from the subscription, default headers restored).
const frames11: Record<string, { description: string; epoch: string; withEpoch: boolean; expanded: unknown }> = {
  message: {
    description: "an ordinary live message: room, id, offset, timestamp, sender, payload (the epoch is the subscription's)",
    epoch: "0454dc83f0954fd8",
    withEpoch: false,
    expanded: {
      type: "message",
      id: "-MD6Qrtr-4821",
      room: "lobby",
      payload: { text: "hi" },
      headers: { "x-timestamp": "1796597881414", "x-twist-id": "main" },
      offset: 4821,
      epoch: "0454dc83f0954fd8",
      timestamp: 1796597881414,
      sender: "alice",
    },
  },
  message_epoch_changed: {
    description: "the first message after the room's epoch changed carries it; a named timeline and another header stay",
    epoch: "e7c1",
    withEpoch: true,
    expanded: {
      type: "message",
      id: "m_01",
      room: "lobby",
      payload: { text: "héllo ✓ 🚀" },
      // Map entries in sorted order: protobufjs writes them as given, Python's deterministic encoder sorts them.
      headers: { trace: "t-9", "x-timestamp": "1767225600123", "x-twist-id": "draft-2" },
      offset: 1,
      epoch: "9d2f",
      timestamp: 1767225600123,
      sender: "alice",
    },
  },
  message_delta: {
    description: "a delta message: binary payload (base64), delta flag",
    epoch: "e7c1",
    withEpoch: false,
    expanded: {
      type: "message",
      id: "m_02",
      room: "ticker",
      payload: "AQID",
      payloadFormat: "binary",
      headers: { "x-timestamp": "1767225600200", "x-twist-id": "main" },
      offset: 59,
      epoch: "e7c1",
      delta: true,
      timestamp: 1767225600200,
      sender: "feed",
    },
  },
  message_inspected: {
    description: "a message CASIL redacted, with the decision",
    epoch: "e1",
    withEpoch: false,
    expanded: {
      type: "message",
      id: "m_03",
      room: "support",
      payload: { text: "card [REDACTED]" },
      headers: { "x-timestamp": "1767225600300", "x-twist-id": "main" },
      offset: 3,
      epoch: "e1",
      timestamp: 1767225600300,
      sender: "carol",
      inspection: { decision: "redact", reasonCode: "CASIL_POLICY_REDACTED", flags: ["contains_probable_secret"], policyVersion: 7 },
    },
  },
  history_page: {
    description: "a page of history: the page carries the epoch, its messages only when theirs differs",
    epoch: "e7c1",
    withEpoch: false,
    expanded: {
      type: "history_page",
      requestId: "r13",
      room: "lobby",
      offset: 58,
      epoch: "e7c1",
      messages: [
        { type: "message", id: "m_57", room: "lobby", payload: { text: "hi" }, headers: { "x-timestamp": "1767225600100", "x-twist-id": "main" }, offset: 57, epoch: "e7c1", timestamp: 1767225600100, sender: "bob" },
        { type: "message", id: "m_58", room: "lobby", payload: { text: "hey" }, headers: { "x-timestamp": "1767225600123", "x-twist-id": "main" }, offset: 58, epoch: "e7c1", timestamp: 1767225600123, sender: "alice" },
      ],
    },
  },
  subscribed_recovered: {
    description: "a subscribe with since answered in one frame: the recovered messages in offset order, the reply's epoch",
    epoch: "e7c1",
    withEpoch: false,
    expanded: {
      type: "subscribed",
      requestId: "r14",
      room: "lobby",
      offset: 58,
      epoch: "e7c1",
      recovered: true,
      messages: [
        { type: "message", id: "m_57", room: "lobby", payload: { text: "hi" }, headers: { "x-timestamp": "1767225600100", "x-twist-id": "main" }, offset: 57, epoch: "e7c1", timestamp: 1767225600100, sender: "bob" },
        { type: "message", id: "m_58", room: "lobby", payload: { text: "hey" }, headers: { "x-timestamp": "1767225600123", "x-twist-id": "main" }, offset: 58, epoch: "e7c1", timestamp: 1767225600123, sender: "alice" },
      ],
    },
  },
};

function expanded11(frame: Frame, epoch: string): Frame {
  if (frame.type === "message") return expandMessage(frame, epoch);
  return frame.messages ? { ...frame, messages: frame.messages.map((m) => expandMessage(m, frame.epoch)) } : frame;
}

mkdirSync(dir11, { recursive: true });
for (const f of readdirSync(dir11)) if (f.endsWith(".json")) rmSync(join(dir11, f));
for (const [name, { description, epoch, withEpoch, expanded }] of Object.entries(frames11)) {
  const decoded = decodeJson(JSON.stringify(expanded), { from: "any" });
  if (!decoded.ok) throw new Error(`vector 1.1/${name}: ${decoded.error.code} ${decoded.error.message}`);
  if (!isDeepStrictEqual(JSON.parse(encodeJson(decoded.frame)), expanded)) throw new Error(`vector 1.1/${name}: expanded is not canonical`);
  const options = { protocol: "1.1", epoch: withEpoch } as const;
  const text = encodeJson(decoded.frame, options);
  const bytes = encodeProto(decoded.frame, options);
  const fromText = decodeJson(text, { from: "any" });
  const fromBytes = decodeProto(bytes, { from: "any" });
  if (!fromText.ok || !fromBytes.ok) throw new Error(`vector 1.1/${name} does not decode`);
  if (encodeJson(fromBytes.frame, options) !== text) throw new Error(`vector 1.1/${name}: the protobuf twin differs`);
  if (!isDeepStrictEqual(JSON.parse(encodeJson(expanded11(fromText.frame, epoch))), expanded)) {
    throw new Error(`vector 1.1/${name}: expandMessage does not give the 1.0 frame back`);
  }
  const vector = { name, description, protocol: "1.1", epoch, json: JSON.parse(text), protobuf: toBase64(bytes), expanded };
  writeFileSync(join(dir11, `${name}.json`), JSON.stringify(vector, null, 2) + "\n");
}
console.log(`vectors: wrote ${Object.keys(frames).length} files to proto/vectors/ and ${Object.keys(frames11).length} to proto/vectors/1.1/`);
