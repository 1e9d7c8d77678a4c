import { ErrorCode, FrameError, decodeServerJson, encodeJson10, type Codec, type DecodeResult } from "@arqon/core";

/**
 * The codecs a client can speak. JSON is always there; protobuf is registered by importing `@arqon/sdk/protobuf`,
 * so that an application that never imports it does not bundle protobufjs. The registry lives on `globalThis`
 * (under a registered symbol) so that separately bundled entry points share it.
 */
const REGISTRY = Symbol.for("arqon.sdk.codecs");

/** Server frames may be larger and deeper than the client-side limits; the server already bounded them. */
export const INBOUND_DECODE = { from: "any", maxBytes: Number.MAX_SAFE_INTEGER, maxDepth: 256 } as const;

const json: Codec = {
  name: "json",
  // Clients send protocol 1.0 frames only (1.1 changes how messages are written, and clients send none).
  encode: (frame) => encodeJson10(frame),
  decode(data) {
    return (
      decodeInbound(data) ?? {
        ok: false,
        error: new FrameError(ErrorCode.FRAME_MALFORMED, 'binary frame without a protobuf codec; import "@arqon/sdk/protobuf"'),
      }
    );
  },
};

function registry(): Map<string, Codec> {
  const g = globalThis as unknown as Record<symbol, Map<string, Codec> | undefined>;
  let map = g[REGISTRY];
  if (!map) g[REGISTRY] = map = new Map();
  return map;
}

/** Makes `codec` available by name (`new ArqonClient(url, { codec: "protobuf" })`) and for inbound binary frames. */
export function registerCodec(codec: Codec): void {
  registry().set(codec.name, codec);
}

export function findCodec(name: string): Codec | undefined {
  return name === "json" ? json : registry().get(name);
}

/** Decodes one inbound WebSocket message: text is JSON, binary is protobuf (when registered). */
export function decodeInbound(data: string | Uint8Array): DecodeResult | undefined {
  if (typeof data === "string") return decodeServerJson(data, INBOUND_DECODE);
  return binaryDecode(data);
}

function binaryDecode(data: Uint8Array): DecodeResult | undefined {
  const proto = registry().get("protobuf");
  return proto ? proto.decode(data, INBOUND_DECODE) : undefined;
}

export { json as jsonCodec };
