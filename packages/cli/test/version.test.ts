import { describe, expect, it } from "vitest";
import { DEFAULT_PORT } from "@arqon/server";
import { DEFAULT_URL } from "@arqon/sdk";
import { STANDARD_OPERATORS } from "@arqon/operators";
import pkg from "../package.json" with { type: "json" };
import { run, VERSION } from "../src/index.js";

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l) } };
}

describe("cli version", () => {
  it("version - --version prints the package version and exits 0", async () => {
    const { out, io } = capture();
    expect(await run(["--version"], io)).toBe(0);
    expect(out).toEqual([pkg.version]);
    expect(VERSION).toBe(pkg.version);
  });

  it("version - an unknown command exits 2 with a message on stderr", async () => {
    const { out, err, io } = capture();
    expect(await run(["nope"], io)).toBe(2);
    expect(out).toEqual([]);
    expect(err[0]).toContain("--version");
  });

  it("workspace - sibling packages resolve from source without a build", () => {
    expect(DEFAULT_PORT).toBe(9100);
    expect(DEFAULT_URL).toContain(":9100/ws");
    expect(STANDARD_OPERATORS).toContain("op.store");
  });
});
