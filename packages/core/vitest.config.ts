import { defineConfig } from "vitest/config";

// Sibling @arqon/* packages resolve to their TypeScript sources through the "arqon-source" export
// condition, so tests never need a build. Vitest 4's node environment resolves through the SSR
// options (ssr.resolve.conditions); resolve.conditions covers browser-like environments. Setting
// either replaces Vite's defaults, so those are repeated after "arqon-source".
export default defineConfig({
  resolve: { conditions: ["arqon-source", "module", "browser", "development|production"] },
  // Without Vite's "module" condition on the Node side: Node itself ignores it, and packages whose "module" build is
  // not loadable by Node (@opentelemetry/api's extensionless ESM) must resolve as Node resolves them.
  ssr: { resolve: { conditions: ["arqon-source", "node", "development|production"] } },
  test: {
    name: "@arqon/core",
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    environment: "node",
    // CI runs every package on a shared 2-core machine: time limits are for hangs, not for speed.
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
