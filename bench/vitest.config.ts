import { defineConfig } from "vitest/config";

// The bench's own logic (the saturation search) is tested here; the benchmarks themselves run with `npm run bench`.
// @arqon/* packages resolve to their TypeScript sources through the "arqon-source" export condition, as in the
// packages' own configs.
export default defineConfig({
  resolve: { conditions: ["arqon-source", "module", "browser", "development|production"] },
  // Without Vite's "module" condition on the Node side: Node itself ignores it, and packages whose "module" build is
  // not loadable by Node (@opentelemetry/api's extensionless ESM) must resolve as Node resolves them.
  ssr: { resolve: { conditions: ["arqon-source", "node", "development|production"] } },
  test: {
    name: "@arqon/bench",
    include: ["test/**/*.test.ts"],
    environment: "node",
    testTimeout: 30_000,
  },
});
