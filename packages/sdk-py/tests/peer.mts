// A TypeScript client for the Python tests: a `ws` socket with @arqon/core's codecs. Usage:
//   tsx peer.mts <url> <token> <json|protobuf>
// Each stdin line is a frame in the JSON face; it is sent as a text frame (json) or as protobuf bytes (protobuf).
// Each frame received is printed on stdout as one JSON line (JSON face), whatever its wire format; the close is
// printed as {"type":"_closed","code":N}. The connection's outbound codec is the same as the sending one.
import { createInterface } from "node:readline";
import WebSocket from "ws";
import { decodeFrame, decodeJson, encodeJson, encodeProto } from "@arqon/core";

const [url, token, codec = "json"] = process.argv.slice(2);
if (!url || !token || (codec !== "json" && codec !== "protobuf")) {
  process.stderr.write("usage: peer.mts <url> <token> <json|protobuf>\n");
  process.exit(2);
}
const target = codec === "protobuf" ? `${url}?codec=protobuf` : url;
const ws = new WebSocket(target, { headers: { authorization: `Bearer ${token}` } });

ws.on("message", (data, isBinary) => {
  const bytes = data as Buffer;
  const result = decodeFrame(isBinary ? new Uint8Array(bytes) : bytes.toString("utf8"), { from: "any" });
  if (!result.ok) {
    process.stdout.write(JSON.stringify({ type: "_decode_error", code: result.error.code, binary: isBinary }) + "\n");
    return;
  }
  process.stdout.write(encodeJson(result.frame).replace(/^\{/, `{"_binary":${isBinary},`) + "\n");
});
ws.on("close", (code) => {
  process.stdout.write(JSON.stringify({ type: "_closed", code }) + "\n");
  process.exit(0);
});
ws.on("error", (err) => {
  process.stdout.write(JSON.stringify({ type: "_error", message: String(err) }) + "\n");
});

const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  if (!line.trim()) return;
  const result = decodeJson(line, { from: "client" });
  if (!result.ok) {
    process.stdout.write(JSON.stringify({ type: "_encode_error", code: result.error.code }) + "\n");
    return;
  }
  ws.send(codec === "protobuf" ? encodeProto(result.frame) : encodeJson(result.frame));
});
lines.on("close", () => ws.close(1000));
