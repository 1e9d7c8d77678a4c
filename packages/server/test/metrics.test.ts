import { afterEach, describe, expect, it } from "vitest";
import { Histogram, Registry } from "prom-client";
import { FANOUT_BUCKETS, OTHER_TENANT_LABEL, TenantHistogram, TenantLabels } from "../src/metrics.js";
import { payloadOf, startGateway, type TestGateway } from "../src/testing.js";

const OPERATOR_KEY = "metrics-test-operator-key-0123456789abcdef";

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

async function scrape(g: TestGateway): Promise<string> {
  const res = await fetch(`${g.httpUrl}/metrics`, { headers: { "x-api-key": OPERATOR_KEY } });
  expect(res.status).toBe(200);
  return res.text();
}

/** The value of one sample line, e.g. `arqon_connections{tenant="a"}`; undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe("metrics", () => {
  it("metrics - past maxTenantLabels, tenants are counted under tenant=\"_other\"; a tenant keeps its label, and gauges go back to 0", async () => {
    gw = await startGateway({ operatorKeys: [OPERATOR_KEY], metrics: { maxTenantLabels: 2 } });
    const a = await gw.client({ tenant: "a" });
    const b = await gw.client({ tenant: "b" });
    const c = await gw.client({ tenant: "c" });
    const d = await gw.client({ tenant: "d" });
    for (const client of [a, b, c, d]) {
      await client.subscribe("room");
      expect((await client.publish("room", { hi: 1 })).type).toBe("ack");
    }
    let text = await scrape(gw);
    expect(sample(text, 'arqon_connections{tenant="a"}')).toBe(1);
    expect(sample(text, 'arqon_connections{tenant="b"}')).toBe(1);
    expect(sample(text, `arqon_connections{tenant="${OTHER_TENANT_LABEL}"}`)).toBe(2);
    expect(sample(text, 'arqon_connections{tenant="c"}')).toBeUndefined();
    // Each client sent a subscribe and a publish.
    expect(sample(text, `arqon_messages_in_total{tenant="${OTHER_TENANT_LABEL}"}`)).toBe(4);
    expect(sample(text, 'arqon_messages_in_total{tenant="a"}')).toBe(2);
    expect(text).not.toMatch(/tenant="[cd]"/);
    // Tenant "a" still has its own label after others were sent to _other; a leaving "_other" tenant decrements it.
    await c[Symbol.asyncDispose]();
    await d[Symbol.asyncDispose]();
    const a2 = await gw.client({ tenant: "a" });
    await a2.subscribe("room");
    await new Promise((r) => setTimeout(r, 50));
    text = await scrape(gw);
    expect(sample(text, 'arqon_connections{tenant="a"}')).toBe(2);
    expect(sample(text, `arqon_connections{tenant="${OTHER_TENANT_LABEL}"}`)).toBe(0);
    expect(sample(text, `arqon_connections_total{tenant="${OTHER_TENANT_LABEL}"}`)).toBe(2);
  });

  it("metrics - TenantLabels: first come, at most max, refuses a bad bound; a tenant literally named _other shares the series", () => {
    const labels = new TenantLabels(2);
    expect([labels.of("x"), labels.of("y"), labels.of("z"), labels.of("x"), labels.of(OTHER_TENANT_LABEL)]).toEqual(["x", "y", OTHER_TENANT_LABEL, "x", OTHER_TENANT_LABEL]);
    expect(labels.size).toBe(2);
    expect(new TenantLabels(0).of("x")).toBe(OTHER_TENANT_LABEL);
    expect(() => new TenantLabels(-1)).toThrow(RangeError);
    expect(() => new TenantLabels(1.5)).toThrow(RangeError);
  });

  it("metrics - TenantHistogram exposes what prom-client's Histogram does for the same observations, and resets", async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const fast = new TenantHistogram("x_seconds", "help text", FANOUT_BUCKETS, [ours], new TenantLabels(1));
    const reference = new Histogram({ name: "x_seconds", help: "help text", labelNames: ["tenant"], buckets: FANOUT_BUCKETS, registers: [theirs] });
    const values = [0, 0.00001, 0.0000100001, 0.00003, 0.001, 0.0025, 0.7, 2.5, 3, 1e9, ...FANOUT_BUCKETS.map((b) => b * 0.99)];
    for (const [i, v] of values.entries()) {
      const tenant = i % 3 === 0 ? "acme" : "late"; // "late" is past the bound of 1: _other
      fast.labels(tenant).observe(v);
      reference.labels(tenant === "acme" ? "acme" : OTHER_TENANT_LABEL).observe(v);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    const flat = (metrics: Array<{ values: Array<{ labels: object; sharedLabels?: object; value: number; metricName?: string }> }>) =>
      metrics[0]!.values.map((v) => ({ labels: { ...v.labels, ...v.sharedLabels }, value: v.value, metricName: v.metricName }));
    expect(flat(await ours.getMetricsAsJSON())).toEqual(flat(await theirs.getMetricsAsJSON()));
    ours.resetMetrics();
    expect(await ours.metrics()).toMatch(/x_seconds_count\{tenant="acme"\} 0/);
  });

  it("metrics - arqon_fanout_seconds counts each room frame of each tenant", async () => {
    gw = await startGateway({ operatorKeys: [OPERATOR_KEY] });
    const a = await gw.client({ tenant: "a" });
    const b = await gw.client({ tenant: "a", sub: "b" });
    await b.subscribe("room");
    for (let i = 0; i < 3; i++) expect((await a.publish("room", { i })).type).toBe("ack");
    await b.waitFor((f) => f.type === "message" && (payloadOf(f) as { i: number }).i === 2);
    const text = await scrape(gw);
    expect(sample(text, 'arqon_fanout_seconds_count{tenant="a"}')).toBeGreaterThanOrEqual(3);
    expect(sample(text, 'arqon_fanout_seconds_bucket{le="+Inf",tenant="a"}')).toBe(sample(text, 'arqon_fanout_seconds_count{tenant="a"}'));
    expect(sample(text, 'arqon_fanout_seconds_sum{tenant="a"}')).toBeGreaterThan(0);
  });

  it("metrics - the embedded backends export the history gauges and no backend link gauge", async () => {
    gw = await startGateway({ operatorKeys: [OPERATOR_KEY] });
    const client = await gw.client({ tenant: "acme" });
    for (let i = 0; i < 3; i++) await client.publish("r1", { i });
    await client.publish("r2", { i: 0 });
    const text = await scrape(gw);
    expect(sample(text, "arqon_history_messages")).toBe(4);
    expect(sample(text, "arqon_history_rooms")).toBe(2);
    expect(text).not.toContain("arqon_backend_connected");
  });
});
