import type { DecodeOptions, DecodeResult } from "./types.js";
import { decodeJson } from "./json.js";
import { decodeProto } from "./proto.js";

export type { Codec, DecodeOptions, DecodeResult, EncodeOptions } from "./types.js";
export type { JsonParts } from "./json.js";
export { COMPACT_MESSAGE_KEYS, expandMessage } from "./message11.js";
export { encodeJson, encodeJson10, encodeJsonParts, decodeJson, decodeServerJson, jsonCodec, DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_DEPTH } from "./json.js";
export { encodeProto, decodeProto, protobufCodec } from "./proto.js";
export { validateClientFrame, stateKeyProblem, MAX_STATE_KEY_LENGTH } from "./validate.js";
export * from "./bytes.js";

/** Protocol normalization: text frames are JSON, binary frames are protobuf; both become the same Frame. */
export function decodeFrame(data: string | Uint8Array, options?: DecodeOptions): DecodeResult {
  return typeof data === "string" ? decodeJson(data, options) : decodeProto(data, options);
}
