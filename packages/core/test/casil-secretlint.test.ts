import { describe, expect, it } from "vitest";
import { lintSource } from "@secretlint/core";
import { creator as recommended } from "@secretlint/secretlint-rule-preset-recommend";
import { findSecrets } from "../src/casil/index.js";

// CASIL's secret detector is checked against a maintained rule set: secretlint's recommended preset. Every sample the
// preset reports (inside a chat message, as CASIL sees it) must be reported by findSecrets too; on ordinary messages
// neither may report anything. The preset itself is not used at run time: its rules run one V8 regex pass each over
// the text, while findSecrets is one linear scan on the publish path.

/** Deterministic filler in `alphabet` (no randomness in tests; the values only need the right shape). */
function filler(n: number, alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"): string {
  let s = "";
  let x = 7;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    s += alphabet[x % alphabet.length];
  }
  return s;
}
const UPPER_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

const SECRETS: Record<string, string> = {
  aws_access_key: "AKIA" + "QYLPMN5HHHFPZAM2",
  github_classic: "ghp_" + filler(36),
  github_fine_grained: "github_pat_" + filler(22) + "_" + filler(59),
  gitlab: "glpat-" + filler(20),
  npm: "npm_" + filler(36),
  slack_bot: "xoxb-123456789012-1234567890123-" + filler(24),
  slack_webhook: `https://hooks.slack.com/services/T${filler(8, UPPER_DIGITS)}/B${filler(8, UPPER_DIGITS)}/${filler(24)}`,
  basic_auth_url: `https://user:${filler(12)}@example.com/path`,
  private_key: `-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA${filler(64)}\n-----END RSA PRIVATE KEY-----`,
  sendgrid: `SG.${filler(22)}.${filler(43)}`,
  openai: `sk-${filler(20)}T3BlbkFJ${filler(20)}`,
  openai_project: `sk-proj-${filler(48)}T3BlbkFJ${filler(48)}`,
  anthropic: `sk-ant-api03-${filler(93)}AA`,
  linear: "lin_api_" + filler(40),
  shopify: "shpat_" + filler(32, "0123456789abcdef"),
  postgres: `postgres://admin:${filler(16)}@db.example.com:5432/prod`,
  mysql: `mysql://root:${filler(12)}@10.0.0.5/app`,
  mongodb: `mongodb+srv://app:${filler(14)}@cluster0.example.net/db`,
  stripe: "sk_live_" + filler(24),
  google: "AIza" + filler(35),
};

const ORDINARY = [
  "hello there, how are you today?",
  "The quick brown fox jumps over the lazy dog while the bus carries every message to its room.",
  "see https://example.com/docs/getting-started?tab=node#install for the steps",
  "order 1763790000000 shipped to 221B Baker Street, ref ABCD-1234-EFGH",
  "the sha is 3f786850e387550fdab836ed7e6dc881de23001b and the build passed",
  "meeting at 10:30, room 4.12; bring the skeleton key for the store room",
  "uuid 123e4567-e89b-12d3-a456-426614174000 belongs to the nightly job",
];

const config = { rules: [{ id: "@secretlint/secretlint-rule-preset-recommend", rule: recommended }] };

async function secretlintRules(content: string): Promise<string[]> {
  const result = await lintSource({
    source: { content, filePath: "/message.json", ext: ".json", contentType: "text" },
    options: { config: config as never, noPhysicFilePath: true },
  });
  return result.messages.map((m) => m.ruleId.replace("@secretlint/secretlint-rule-", ""));
}

const message = (text: string) => JSON.stringify({ room: "chat", text: `note: ${text} end` });

describe("casil secrets against secretlint's recommended preset", () => {
  it("secretlint - every sample the preset reports, CASIL reports too", async () => {
    const missed: string[] = [];
    let reportedByPreset = 0;
    for (const [name, secret] of Object.entries(SECRETS)) {
      const content = message(secret);
      const theirs = await secretlintRules(content);
      const ours = findSecrets(content);
      if (theirs.length > 0) reportedByPreset++;
      if (theirs.length > 0 && ours.length === 0) missed.push(`${name} (${theirs.join(", ")})`);
      // Shapes the preset does not know (or only knows with more context) are still ours to find.
      expect(ours.length, name).toBeGreaterThan(0);
    }
    expect(missed).toEqual([]);
    // The corpus exercises most of the preset's rules, not a corner of it.
    expect(reportedByPreset).toBeGreaterThanOrEqual(14);
  });

  it("secretlint - ordinary chat messages: neither reports anything", async () => {
    for (const text of ORDINARY) {
      const content = message(text);
      expect(await secretlintRules(content), text).toEqual([]);
      expect(findSecrets(content), text).toEqual([]);
    }
  });

  it("secretlint - a base64-encoded secret is found by CASIL (the preset reads text as it is)", async () => {
    const encoded = Buffer.from(`token=${SECRETS.github_classic}`).toString("base64");
    expect(await secretlintRules(message(encoded))).toEqual([]);
    expect(findSecrets(message(encoded)).map((h) => [h.kind, h.encoded])).toEqual([["github_token", true]]);
  });
});
