import { defineConfig } from "tsup";
import { arqonTsup } from "../../tsup.shared";

export default defineConfig(arqonTsup({ index: "src/index.ts", testing: "src/testing.ts" }));
