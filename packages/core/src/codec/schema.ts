/**
 * Field tables shared by both codecs: every field of every message of the wire contract, in proto field order, with
 * the kind that decides how it is validated, written as JSON and mapped to protobuf. Adding a field to the proto
 * means adding one row here.
 */

export type FieldKind =
  | "string"
  | "uint"
  /** A uint32 on the wire: 0 to 4294967295. */
  | "uint32"
  | "int"
  | "bool"
  /** A bool with explicit presence (`optional` in the proto): `false` is kept, not omitted. */
  | "boolPresent"
  /** A uint with explicit presence: `0` is kept. */
  | "uintPresent"
  /** Bytes holding UTF-8 JSON, shown as the JSON value in the JSON face. */
  | "json"
  /** The frame payload: JSON value, or base64 when payloadFormat is "binary". */
  | "payload"
  | "payloadFormat"
  | "headers"
  | "stringList"
  | { message: MessageName }
  | { list: MessageName };

export type MessageName = "Frame" | "Position" | "ErrorInfo" | "Member" | "StateEntry" | "Limits" | "HistoryQuery" | "Inspection";

export interface FieldSpec {
  name: string;
  snake: string;
  kind: FieldKind;
  /** Always present after decoding (filled with "" when absent on the wire). */
  required?: boolean;
  /** Position in its message's row list (proto order). */
  index: number;
  /** `,"name":`, what the JSON writer puts before the value. */
  prefix: string;
}

function f(name: string, kind: FieldKind, required = false): FieldSpec {
  return { name, snake: name.replace(/[A-Z]/g, (c) => "_" + c.toLowerCase()), kind, required, index: 0, prefix: ',"' + name + '":' };
}

export const SCHEMA: Record<MessageName, FieldSpec[]> = {
  Frame: [
    // `type` is handled by the codecs themselves.
    f("id", "string"),
    f("requestId", "string"),
    f("tenant", "string"),
    f("room", "string"),
    f("payload", "payload"),
    f("payloadFormat", "payloadFormat"),
    f("headers", "headers"),
    f("offset", "uint"),
    f("epoch", "string"),
    f("since", { message: "Position" }),
    f("recovered", "boolPresent"),
    f("idempotencyKey", "string"),
    f("delta", "bool"),
    f("error", { message: "ErrorInfo" }),
    f("members", { list: "Member" }),
    f("joined", { list: "Member" }),
    f("left", { list: "Member" }),
    f("state", { list: "StateEntry" }),
    f("command", "string"),
    f("args", "json"),
    f("status", "string"),
    f("token", "string"),
    f("clientId", "string"),
    f("version", "string"),
    f("limits", { message: "Limits" }),
    f("echo", "bool"),
    f("timestamp", "int"),
    f("reason", "string"),
    f("history", { message: "HistoryQuery" }),
    f("messages", { list: "Frame" }),
    f("sender", "string"),
    f("inspection", { message: "Inspection" }),
    f("expiresAt", "int"),
    f("info", { message: "Member" }),
    f("protocol", "string"),
    f("duplicate", "bool"),
    f("method", "string"),
    f("data", "json"),
  ],
  Position: [f("offset", "uint"), f("epoch", "string", true)],
  ErrorInfo: [f("code", "string", true), f("message", "string", true), f("retryable", "bool")],
  Member: [f("clientId", "string"), f("userId", "string"), f("info", "json"), f("joinedAt", "int"), f("connections", "uint32")],
  StateEntry: [
    f("key", "string", true),
    f("value", "json"),
    f("version", "uint"),
    f("ifVersion", "uintPresent"),
    f("deleted", "bool"),
    f("updatedAt", "int"),
    f("updatedBy", "string"),
  ],
  Limits: [
    f("maxPayloadBytes", "uint32"),
    f("maxFrameBytes", "uint32"),
    f("maxSubscriptions", "uint32"),
    f("publishRatePerSecond", "uint32"),
    f("publishBurst", "uint32"),
    f("pingIntervalMs", "uint32"),
    f("pongTimeoutMs", "uint32"),
    f("maxPresenceInfoBytes", "uint32"),
    f("maxPendingBytes", "uint32"),
  ],
  HistoryQuery: [
    f("fromOffset", "uint"),
    f("toOffset", "uint"),
    f("limit", "uint32"),
    f("reverse", "bool"),
    f("fromTs", "int"),
    f("toTs", "int"),
    f("twistId", "string"),
  ],
  Inspection: [f("decision", "string"), f("reasonCode", "string"), f("flags", "stringList"), f("policyVersion", "uint32")],
};

/** JSON-face key (camelCase or snake_case) → field spec, per message. */
export const BY_JSON_KEY: Record<MessageName, Map<string, FieldSpec>> = Object.fromEntries(
  (Object.keys(SCHEMA) as MessageName[]).map((m) => {
    const map = new Map<string, FieldSpec>();
    SCHEMA[m].forEach((spec, i) => {
      spec.index = i;
      map.set(spec.name, spec);
      map.set(spec.snake, spec);
    });
    return [m, map];
  }),
) as Record<MessageName, Map<string, FieldSpec>>;

/** Bounds on headers (count, name and value length). */
export const MAX_HEADERS = 64;
export const MAX_HEADER_NAME = 128;
export const MAX_HEADER_VALUE = 4096;
export const HEADER_NAME_RE = /^[a-z0-9][a-z0-9._-]*$/;
