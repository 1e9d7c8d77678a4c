import { builtinModules } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { defineConfig } from "eslint/config";
import js from "@eslint/js";
import tseslint from "typescript-eslint";

const repoRoot = path.dirname(fileURLToPath(import.meta.url));

/** Folders that hold one workspace package each; a relative import may not cross from one into another. */
const packageParents = ["packages", "apps/examples"];
const packageRoots = ["bench"];

function packageOf(file) {
  const rel = path.relative(repoRoot, file).split(path.sep).join("/");
  for (const root of packageRoots) if (rel === root || rel.startsWith(`${root}/`)) return root;
  for (const parent of packageParents) {
    if (rel.startsWith(`${parent}/`)) {
      const name = rel.slice(parent.length + 1).split("/")[0];
      if (name) return `${parent}/${name}`;
    }
  }
  return undefined;
}

/** Relative imports that climb out of their own package into a sibling's files (`../../core/src/...`). */
const noCrossPackageRelative = {
  meta: {
    type: "problem",
    docs: { description: "Import sibling packages by name (their package.json exports), never by relative path." },
    messages: {
      crossPackage:
        "'{{source}}' reaches into {{target}}; import it by package name so only its exports are used.",
    },
    schema: [],
  },
  create(context) {
    const filename = context.filename;
    const own = packageOf(filename);
    function check(node) {
      const source = node.source?.value;
      if (typeof source !== "string" || !source.startsWith(".")) return;
      const target = packageOf(path.resolve(path.dirname(filename), source));
      if (target && target !== own) context.report({ node: node.source, messageId: "crossPackage", data: { source, target } });
    }
    return {
      ImportDeclaration: check,
      ExportNamedDeclaration: check,
      ExportAllDeclaration: check,
      ImportExpression: check,
    };
  },
};

const internalsPatterns = [
  {
    group: ["@arqon/*/src", "@arqon/*/src/**", "@arqon/*/dist", "@arqon/*/dist/**"],
    message: "Import @arqon packages through their package.json exports, not their src/ or dist/ files.",
  },
];

const nodeBuiltins = builtinModules.filter((name) => !name.startsWith("_"));

/** Core is bundled into the browser SDK: no Node APIs, no ws, and no other @arqon package. */
const coreRestrictions = {
  paths: [
    ...nodeBuiltins.map((name) => ({
      name,
      message: "@arqon/core is isomorphic: Node built-ins belong in @arqon/server or @arqon/nats.",
    })),
    { name: "ws", message: "@arqon/core is isomorphic: WebSocket transports belong in @arqon/server or @arqon/sdk." },
    {
      name: "isomorphic-ws",
      message: "@arqon/core is isomorphic: WebSocket transports belong in @arqon/server or @arqon/sdk.",
    },
  ],
  patterns: [
    ...internalsPatterns,
    { group: ["node:*"], message: "@arqon/core is isomorphic: no node: imports." },
    { group: ["ws/*", "isomorphic-ws/*"], message: "@arqon/core is isomorphic: no ws imports." },
    { group: ["@arqon/*"], message: "@arqon/core imports no other @arqon package; the arrows point into core." },
  ],
};

export default defineConfig(
  {
    ignores: [
      "**/node_modules/**",
      "**/dist/**",
      "**/coverage/**",
      ".nx/**",
      "**/.venv/**",
      "**/src/gen/**",
      "**/generated/**",
    ],
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2022, sourceType: "module" },
    plugins: { arqon: { rules: { "no-cross-package-relative": noCrossPackageRelative } } },
    rules: {
      "arqon/no-cross-package-relative": "error",
      "no-restricted-imports": ["error", { patterns: internalsPatterns }],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  {
    files: ["packages/core/**/*.{ts,mts,cts,js,mjs,cjs}"],
    // Tests and build configs run only in Node (reading shared vectors from disk, for instance).
    ignores: ["packages/core/test/**", "packages/core/**/*.test.ts", "packages/core/*.config.ts"],
    rules: {
      "no-restricted-imports": ["error", coreRestrictions],
      "no-restricted-syntax": [
        "error",
        {
          selector: "ImportExpression > Literal[value=/^(node:|ws$|isomorphic-ws$)/]",
          message: "@arqon/core is isomorphic: no dynamic import of Node built-ins or ws.",
        },
      ],
      "no-restricted-globals": [
        "error",
        { name: "Buffer", message: "@arqon/core is isomorphic: use Uint8Array." },
        { name: "__dirname", message: "@arqon/core is isomorphic." },
        { name: "__filename", message: "@arqon/core is isomorphic." },
      ],
    },
  },
);
