import { defineConfig } from "tsup";
import { arqonTsup } from "../../tsup.shared";

// cli.ts carries the `#!/usr/bin/env node` line; tsup keeps it and marks dist/cli.js executable.
export default defineConfig(arqonTsup({ index: "src/index.ts", cli: "src/cli.ts" }));
