import { defineConfig } from "tsup";
import { arqonTsup } from "../../tsup.shared";

// ESM + CJS for bundlers and Node (`server` is the Node-only server-API client). The minified browser bundles are built by scripts/browser-bundle.mjs.
export default defineConfig(arqonTsup({ index: "src/index.ts", protobuf: "src/protobuf.ts", webhooks: "src/webhooks.ts", server: "src/server.ts" }));
