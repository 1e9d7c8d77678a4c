import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parser } from "@prometheus-io/lezer-promql";
import { afterEach, describe, expect, it } from "vitest";
import { jsonBytes } from "@arqon/core";
import { connectNatsBackends } from "@arqon/nats";
import { describeWithNats, startNatsServer } from "@arqon/nats/testing";
import { webhookOperator } from "@arqon/operators";
import { CasilController } from "@arqon/server";
import { startGateway } from "@arqon/server/testing";
import { buildDashboard, dashboardExpressions, type Dashboard } from "../src/dashboard.js";
import { run } from "../src/index.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const SECRET = "dashboard-test-secret-0123456789abcdef";
const OPERATOR_KEY = "dashboard-operator-key-0123456789abcdef";

/** One vector selector of an expression: the metric name and its label matchers. */
interface Selector {
  metric: string;
  matchers: Array<{ label: string; op: string; value: string }>;
}

/**
 * Parses a dashboard expression with Prometheus's own PromQL grammar (Grafana's `$__rate_interval` and `$tenant`
 * replaced by what Grafana would put there) and returns its vector selectors; throws on a syntax error.
 */
function selectorsOf(expr: string): Selector[] {
  const text = expr.replaceAll("$__rate_interval", "5m").replaceAll("$tenant", "acme");
  const tree = parser.parse(text);
  const out: Selector[] = [];
  const cursor = tree.cursor();
  do {
    if (cursor.type.isError) throw new Error(`PromQL syntax error at ${cursor.from} in: ${text}`);
    if (cursor.name !== "VectorSelector") continue;
    const node = cursor.node;
    const ident = node.getChild("Identifier");
    if (!ident) throw new Error(`a selector without a metric name in: ${text}`);
    const matchers: Selector["matchers"] = [];
    for (const m of node.getChild("LabelMatchers")?.getChildren("UnquotedLabelMatcher") ?? []) {
      const label = m.getChild("LabelName")!;
      const op = m.getChild("MatchOp")!;
      const value = m.getChild("StringLiteral")!;
      matchers.push({ label: text.slice(label.from, label.to), op: text.slice(op.from, op.to), value: JSON.parse(text.slice(value.from, value.to)) as string });
    }
    out.push({ metric: text.slice(ident.from, ident.to), matchers });
  } while (cursor.next());
  if (out.length === 0) throw new Error(`no series in: ${text}`);
  return out;
}

/** The samples of a Prometheus text exposition: name and labels of each line (values ignored). */
function samplesOf(text: string): Array<{ name: string; labels: Record<string, string> }> {
  const out: Array<{ name: string; labels: Record<string, string> }> = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? /.exec(line);
    if (!m) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[3] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels });
  }
  return out;
}

/** Metric families of an exposition (`# TYPE` lines): name → type. */
function familiesOf(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) out.set(m[1]!, m[2]!);
  return out;
}

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("the Grafana dashboard, offline", () => {
  it("dashboard - dashboards/arqon.json is what `arqon dashboard export` builds (regenerate: arqon dashboard export --out dashboards/arqon.json)", () => {
    const committed = readFileSync(path.join(root, "dashboards/arqon.json"), "utf8");
    expect(committed).toBe(JSON.stringify(buildDashboard(), null, 2) + "\n");
  });

  it("dashboard - every expression parses as PromQL and every tenant-scoped one filters by the tenant variable", () => {
    const dashboard = buildDashboard();
    const exprs = dashboardExpressions(dashboard);
    expect(exprs.length).toBeGreaterThanOrEqual(20);
    for (const { panel, expr } of exprs) {
      const selectors = selectorsOf(expr);
      for (const s of selectors) expect(s.metric, `${panel}: ${expr}`).toMatch(/^arqon_/);
    }
    const tenantVar = (dashboard.templating as { list: Array<{ name: string; query?: { query: string } }> }).list.find((v) => v.name === "tenant");
    expect(selectorsOf(tenantVar!.query!.query.replace(/^label_values\((\w+), tenant\)$/, "$1"))[0]!.metric).toBe("arqon_connections_total");
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("dashboard - export --tenant pins every query to that tenant exactly and leaves out the server-wide panels", async () => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await run(["dashboard", "export", "--tenant", 'we"ird'], { out: (l) => out.push(l), err: (l) => err.push(l) });
    expect(code).toBe(0);
    const one = JSON.parse(out.join("\n")) as Dashboard;
    expect(one.title).toBe('ArqonBus: tenant we"ird');
    expect(one.uid).toBe("arqonbus-we_ird");
    expect(JSON.stringify(one)).not.toContain("$tenant");
    const names = (one.templating as { list: Array<{ name: string }> }).list.map((v) => v.name);
    expect(names).toEqual(["datasource"]);
    const exprs = dashboardExpressions(one);
    expect(exprs.length).toBeGreaterThan(10);
    for (const { expr } of exprs) {
      for (const s of selectorsOf(expr)) expect(s.matchers, expr).toContainEqual({ label: "tenant", op: "=", value: 'we"ird' });
    }
    const titles = one.panels.map((p) => p.title);
    for (const serverWide of ["CPU", "Memory", "NATS link", "History size", "Closes and refused upgrades"]) expect(titles).not.toContain(serverWide);
    expect(titles).toContain("Webhook backlog");
    // Usage errors exit 2 with a message, writing nothing.
    const bad: string[] = [];
    expect(await run(["dashboard", "import"], { out: () => undefined, err: (l) => bad.push(l) })).toBe(2);
    expect(bad.join("\n")).toContain('unknown dashboard verb "import"');
    expect(await run(["dashboard", "export", "--tenant", " "], { out: () => undefined, err: (l) => bad.push(l) })).toBe(2);
    expect(bad.join("\n")).toContain("--tenant is empty");
  });
});

describeWithNats("the Grafana dashboard against a real server on NATS", () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  });

  it("dashboard - after real traffic, every series the dashboard queries is on /metrics (tenant series with tenant=\"acme\"), and every family there is documented with its labels", async () => {
    const nats = await startNatsServer();
    cleanups.push(() => nats.stop());
    const backends = await connectNatsBackends({ servers: nats.url, name: "dashboard" });
    cleanups.push(() => backends.close());
    const casil = await CasilController.create({ policy: { mode: "enforce", patterns: [{ name: "word", pattern: "forbidden" }] } });
    const gw = await startGateway({
      secret: SECRET,
      processMetrics: true,
      operatorKeys: [OPERATOR_KEY],
      casil,
      outbound: { allow: ["127.0.0.1"], allowHttp: true },
      ...backends,
      // As arqon serve --nats wires it.
      backendStatus: () => ({ name: "nats", state: backends.status() }),
    });
    cleanups.push(() => gw.close());
    const webhook = await webhookOperator(gw.server, { syncIntervalMs: 200, retryBaseMs: 10, retryCapMs: 20, attempts: 2 });
    cleanups.push(() => webhook.close());

    // A receiver that takes /ok and fails /fail.
    let received = 0;
    const receiver: Server = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        if (req.url === "/ok") received++;
        res.writeHead(req.url === "/ok" ? 204 : 500).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise((resolve) => receiver.close(resolve)));
    const hookBase = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;

    const admin = await gw.client({ sub: "root", role: "admin" });
    for (const [name, url] of [["ok", `${hookBase}/ok`], ["fail", `${hookBase}/fail`]]) {
      const answer = await admin.request({ type: "command", command: "op.webhook.register", args: jsonBytes({ name, room: "orders", url }) });
      expect(answer.status, JSON.stringify(answer)).toBe("ok");
    }
    // A tenant CASIL layer, so the layer counters have a decision.
    const layer = await fetch(`${gw.httpUrl}/api/v1/tenants/acme/casil`, {
      method: "PUT",
      headers: { "x-api-key": OPERATOR_KEY, "content-type": "application/json" },
      body: JSON.stringify({ policy: { mode: "enforce", patterns: [{ name: "layer-word", pattern: "layerword" }] } }),
    });
    expect(layer.status, await layer.clone().text()).toBe(200);

    const alice = await gw.client({ sub: "alice" });
    const carol = await gw.client({ sub: "carol" });
    await carol.subscribe("orders");
    for (let i = 0; i < 5; i++) expect((await alice.publish("orders", { n: i })).type).toBe("ack");
    expect((await alice.publish("orders", { text: "a forbidden word" })).type).toBe("error");
    expect((await alice.publish("orders", { text: "a layerword" })).type).toBe("error");
    expect((await gw.upgrade({ headers: { authorization: "Bearer not-a-token" } })).status).toBe(401);
    const leaver = await gw.client({ sub: "bob" });
    await leaver[Symbol.asyncDispose]();

    const scrape = async (): Promise<string> => {
      const res = await fetch(`${gw.httpUrl}/metrics`, { headers: { "x-api-key": OPERATOR_KEY } });
      expect(res.status).toBe(200);
      return res.text();
    };
    await until(
      async () => {
        const text = await scrape();
        return received >= 5 && text.includes('arqon_webhook_deliveries_total{tenant="acme",outcome="dead"}') && text.includes("arqon_closes_total{");
      },
      15_000,
      "webhook deliveries, a dead letter and a close",
    );
    const text = await scrape();
    const samples = samplesOf(text);

    for (const { panel, expr } of dashboardExpressions(buildDashboard())) {
      for (const s of selectorsOf(expr)) {
        const named = samples.filter((x) => x.name === s.metric);
        expect(named.length, `${panel}: ${s.metric} is not on /metrics`).toBeGreaterThan(0);
        if (s.matchers.some((m) => m.label === "tenant")) {
          expect(
            named.some((x) => x.labels.tenant === "acme"),
            `${panel}: ${s.metric} has no tenant="acme" series`,
          ).toBe(true);
        }
      }
    }
    expect(samples.find((x) => x.name === "arqon_backend_connected")).toEqual({ name: "arqon_backend_connected", labels: { backend: "nats" } });
    expect(text).toMatch(/^arqon_backend_connected\{backend="nats"\} 1$/m);
    expect(text).toMatch(/^arqon_history_messages [1-9]\d*$/m);

    // The metrics audit: every family of ours is in docs/gateway.md's metrics table with exactly its labels.
    const doc = readFileSync(path.join(root, "docs/gateway.md"), "utf8");
    const documented = new Map<string, string[]>();
    for (const m of doc.matchAll(/^\| `(arqon_[a-z_]+)(?:\{([a-z_,]*)\})?` \| (counter|gauge|histogram) \|/gm)) {
      documented.set(m[1]!, m[2] ? m[2].split(",") : []);
    }
    const families = familiesOf(text);
    const ours = [...families.keys()].filter((name) => !/^arqon_(process|nodejs)_/.test(name));
    expect(ours.length).toBeGreaterThan(15);
    for (const name of ours) {
      expect(documented.has(name), `${name} (${families.get(name)}) is not in docs/gateway.md's metrics table`).toBe(true);
      const labels = new Set<string>();
      for (const x of samples) {
        if (x.name === name || x.name === `${name}_bucket` || x.name === `${name}_sum` || x.name === `${name}_count`) {
          for (const l of Object.keys(x.labels)) if (l !== "le") labels.add(l);
        }
      }
      // A family with no sample yet cannot show its labels; the documented ones are checked where there are samples.
      if (labels.size > 0) expect([...labels].sort(), `${name}: the labels docs/gateway.md lists`).toEqual([...documented.get(name)!].sort());
    }
  });
});
