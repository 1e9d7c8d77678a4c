// `arqon serve --otel`: the OpenTelemetry SDK for the gateway's traces, exported as OTLP/HTTP JSON through the
// server's outbound guard (the one path of every server-side request: the collector's host must be public or in
// outbound.allow, like a webhook's). Loaded only when tracing is on; without --otel none of this is imported.
import type { OutboundGuard } from "@arqon/server";
import { ExportResultCode, type ExportResult } from "@opentelemetry/core";
import { JsonTraceSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, NodeTracerProvider, type ReadableSpan, type SpanExporter } from "@opentelemetry/sdk-trace-node";

/** Where and how the traces go (`--otel-endpoint`, the standard OTEL_* variables). */
export interface OtelSettings {
  /** The OTLP/HTTP traces URL (ending in /v1/traces). */
  endpoint: string;
  /** `service.name` of the resource. */
  serviceName: string;
  /** Extra request headers (OTEL_EXPORTER_OTLP_HEADERS / _TRACES_HEADERS: `k=v,k2=v2`, URL-encoded values). */
  headers: Record<string, string>;
}

/** Reads the OTLP settings: the flag first, then the standard variables, then the collector's default port on localhost. */
export function otelSettings(flagEndpoint: string | undefined, env: NodeJS.ProcessEnv): OtelSettings {
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.replace(/\/+$/, "");
  const endpoint = flagEndpoint ?? env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? (base ? `${base}/v1/traces` : "http://localhost:4318/v1/traces");
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new Error(`--otel-endpoint: not a URL: "${endpoint}"`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error(`--otel-endpoint: http: or https: only, got "${url.protocol}"`);
  const headers: Record<string, string> = {};
  for (const raw of [env.OTEL_EXPORTER_OTLP_HEADERS, env.OTEL_EXPORTER_OTLP_TRACES_HEADERS]) {
    for (const pair of (raw ?? "").split(",")) {
      const at = pair.indexOf("=");
      if (at <= 0) continue;
      headers[decodeURIComponent(pair.slice(0, at).trim()).toLowerCase()] = decodeURIComponent(pair.slice(at + 1).trim());
    }
  }
  return { endpoint: url.href, serviceName: env.OTEL_SERVICE_NAME || "arqon", headers };
}

/**
 * An OTLP/HTTP JSON span exporter whose requests go through the server's outbound guard (set once the server exists;
 * the batch processor's first export comes seconds after start). A failed export is dropped, as the SDK's own
 * exporters do after their retries; the gateway never waits for the collector.
 */
export class GuardedOtlpExporter implements SpanExporter {
  /** The guard of the server the spans come from. */
  guard: OutboundGuard | undefined;
  private pending = new Set<Promise<void>>();
  private failures = 0;

  /** The collector's traces URL. */
  get endpoint(): string {
    return this.settings.endpoint;
  }

  constructor(
    private readonly settings: OtelSettings,
    private readonly onFailure: (err: unknown, failures: number) => void,
  ) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    const guard = this.guard;
    if (guard === undefined) return done({ code: ExportResultCode.FAILED, error: new Error("the server is not started yet") });
    const body = JsonTraceSerializer.serializeRequest(spans);
    if (body === undefined) return done({ code: ExportResultCode.FAILED, error: new Error("spans could not be serialized") });
    const sending = guard
      .request(this.settings.endpoint, { method: "POST", headers: { ...this.settings.headers, "content-type": "application/json" }, body, timeoutMs: 10_000 })
      .then((res) => {
        if (res.status >= 200 && res.status < 300) return done({ code: ExportResultCode.SUCCESS });
        throw new Error(`the collector answered HTTP ${res.status}`);
      })
      .catch((err: unknown) => {
        this.onFailure(err, ++this.failures);
        done({ code: ExportResultCode.FAILED, error: err instanceof Error ? err : new Error(String(err)) });
      })
      .finally(() => this.pending.delete(sending));
    this.pending.add(sending);
  }

  async forceFlush(): Promise<void> {
    await Promise.all(this.pending);
  }

  async shutdown(): Promise<void> {
    await this.forceFlush();
  }
}

/** The running SDK: the provider to hand to the server, the exporter to give the guard, and shutdown (flushes). */
export interface OtelHandle {
  /** The tracer provider, registered as the global one (with the AsyncLocalStorage context manager). */
  provider: NodeTracerProvider;
  /** The exporter; set `exporter.guard = server.outbound` once the server exists. */
  exporter: GuardedOtlpExporter;
  /** Ends the batch processor after exporting what it holds (never rejects). */
  shutdown(): Promise<void>;
}

/** Starts the OpenTelemetry SDK for `arqon serve --otel`. */
export function startOtel(settings: OtelSettings, version: string, onFailure: (err: unknown, failures: number) => void): OtelHandle {
  const exporter = new GuardedOtlpExporter(settings, onFailure);
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ "service.name": settings.serviceName, "service.version": version }),
    spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: 1000 })],
  });
  provider.register();
  return {
    provider,
    exporter,
    // The last export may fail like any other (no collector): already reported through onFailure, not a shutdown error.
    shutdown: () => provider.shutdown().catch(() => undefined),
  };
}
