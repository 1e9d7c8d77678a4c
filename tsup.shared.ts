import type { Options } from "tsup";

/**
 * Build settings every TS package shares: ESM (.js) + CJS (.cjs) + declarations, for Node 20.
 * `shims` gives CJS output a working `import.meta.url` (and ESM a `__dirname`), so code that uses
 * `import.meta` does not turn into `{}` in the .cjs build.
 * Declarations are built against sibling packages' published `dist` types (nx builds `^build` first),
 * not their sources, so `customConditions` is cleared for the dts pass.
 */
export function arqonTsup(entry: Record<string, string>, overrides: Options = {}): Options {
  return {
    entry,
    format: ["esm", "cjs"],
    target: "node20",
    platform: "node",
    // `@internal` members (backend handles such as the LMDB root) are left out of the published declarations.
    dts: { compilerOptions: { customConditions: [], stripInternal: true } },
    sourcemap: true,
    clean: true,
    shims: true,
    splitting: false,
    outDir: "dist",
    ...overrides,
  };
}
