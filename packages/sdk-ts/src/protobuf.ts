/**
 * `import "@arqon/sdk/protobuf"` registers the protobuf codec, after which `new ArqonClient(url, { codec: "protobuf" })`
 * speaks binary frames. Kept out of the main entry so that JSON-only browser bundles do not carry protobufjs.
 *
 * @module @arqon/sdk/protobuf
 */
import { protobufCodec } from "@arqon/core";
import { registerCodec } from "./codec.js";

registerCodec(protobufCodec);

export { protobufCodec };
