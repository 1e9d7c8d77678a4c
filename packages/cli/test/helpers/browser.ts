import { existsSync } from "node:fs";
import { chromium, type Browser } from "playwright-core";

/** Debian's Chromium (ARQON_CHROMIUM overrides), as the browser-chat example's test launches it. */
export const CHROMIUM = process.env.ARQON_CHROMIUM ?? "/usr/bin/chromium";

/**
 * Whether Chromium is there. Without it the browser tests are skipped with a loud warning, unless
 * ARQON_REQUIRE_BROWSER=1 (CI), which makes a missing browser a failure.
 */
export function haveChromium(what: string): boolean {
  if (existsSync(CHROMIUM)) return true;
  const message = `${what}: Chromium not found at ${CHROMIUM}; the browser test is SKIPPED (install Debian's chromium, or set ARQON_CHROMIUM)`;
  if (process.env.ARQON_REQUIRE_BROWSER === "1") throw new Error(`${message} — but ARQON_REQUIRE_BROWSER=1`);
  console.warn(`\n*** ${message} ***\n`);
  return false;
}

/** Launches headless Chromium with nothing that reaches the network on its own. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
}
