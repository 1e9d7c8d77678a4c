// Prints fossil deltas made by @arqon/core's encoder (the one the gateway uses), for the Python decoder's tests.
// Input: one JSON array on stdin of [baseBase64, targetBase64] pairs. Output: one JSON array of base64 deltas (null
// where the encoder finds no delta smaller than the target).
import { createDelta } from "@arqon/core";

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const pairs = JSON.parse(input) as Array<[string, string]>;
  const out = pairs.map(([a, b]) => {
    const delta = createDelta(Buffer.from(a, "base64"), Buffer.from(b, "base64"));
    return delta ? Buffer.from(delta).toString("base64") : null;
  });
  process.stdout.write(JSON.stringify(out) + "\n");
});
