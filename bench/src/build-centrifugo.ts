// Builds (or finds) the Centrifugo binary the bench compares against: `npm run centrifugo:build -w @arqon/bench`.
// CI runs it before the tests so that the live Centrifugo adapter test runs instead of skipping.
import { prepareCentrifugo } from "./systems/centrifugo.js";

const problem = await prepareCentrifugo((msg) => console.log(msg));
if (problem !== undefined) {
  console.error(`centrifugo: not available: ${problem}`);
  process.exit(1);
}
