export { createDelta, DeltaEncoder, type DeltaEncoding, type DeltaEncoderOptions } from "./encode.js";
export { applyDelta, DeltaCursor, DeltaDecoder, DEFAULT_MAX_DELTA_OUTPUT_BYTES } from "./delta.js";
