/**
 * Child process of storage-gateway.test.ts: a real gateway on 127.0.0.1 port 0 whose history, state and kv live in
 * embedded storage at argv[2] (or in memory when argv[2] is "memory"), accepting HS256 tokens signed with argv[3].
 * Prints `listening <ws url>` and runs until killed.
 */
import { openEmbeddedStorage } from "../src/storage/index.js";
import { startGateway } from "../src/testing.js";

const [where, secret] = process.argv.slice(2) as [string, string];
const storage = where === "memory" ? undefined : await openEmbeddedStorage({ path: where });
const gw = await startGateway({ secret, ...storage?.backends });
process.stdout.write(`listening ${gw.url}\n`);
