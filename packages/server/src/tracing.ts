import {
  INVALID_SPAN_CONTEXT,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context,
  createTraceState,
  trace,
  type Attributes,
  type Context,
  type Span,
  type SpanContext,
  type Tracer,
  type TracerProvider,
} from "@opentelemetry/api";

/**
 * OpenTelemetry tracing of the gateway (`ArqonServerOptions.tracing`). Off by default: without the option no span is
 * created and no context is read, so the cost of the feature on every path is one field test. On, the gateway makes
 * these spans (docs/gateway.md, "Traces"):
 *
 * - `arqon connect` (server) per WebSocket upgrade: auth and limits, ending at the 101 or the refusal;
 * - `publish <room>` (producer) per publish, with the children `casil inspect` and `history append`;
 * - `deliver <room>` (consumer) per message on every node that delivers it to local subscribers;
 * - `<METHOD> <route>` (server) per server API call.
 *
 * The W3C trace context travels in the message's `traceparent` (and `tracestate`) header: a publish continues the
 * trace of the header the client sent, or of the active context (a server API call), and replaces the header with its
 * own span's context, so that every node's `deliver` span, the subscribers and webhook receivers continue one trace.
 */
export interface TracingOptions {
  /** The provider of the gateway's tracer. @default the global provider (`trace.getTracerProvider()`) */
  tracerProvider?: TracerProvider;
}

/** The message header that carries the W3C trace context (https://www.w3.org/TR/trace-context/). */
export const HEADER_TRACEPARENT = "traceparent";
/** The message header that carries the W3C trace state that goes with `traceparent`. */
export const HEADER_TRACESTATE = "tracestate";

/** What a child of an unsampled span is: records nothing, costs nothing. */
const NOT_RECORDING: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

const TRACEPARENT_RE = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$/;
const INVALID_TRACE = "00000000000000000000000000000000";
const INVALID_SPAN = "0000000000000000";

/** Reads a W3C `traceparent` value; undefined when it is not one (version ff, all-zero ids, bad shape). */
export function parseTraceparent(value: string | undefined, state?: string): SpanContext | undefined {
  if (value === undefined || value.length > 512) return undefined;
  const m = TRACEPARENT_RE.exec(value.trim());
  if (!m) return undefined;
  const [, version, traceId, spanId, flags] = m as unknown as [string, string, string, string, string];
  // Version 00 has exactly four fields; a later version may add some (read the first four).
  if (version === "ff" || (version === "00" && value.trim().length !== 55)) return undefined;
  if (traceId === INVALID_TRACE || spanId === INVALID_SPAN) return undefined;
  const sc: SpanContext = { traceId, spanId, traceFlags: parseInt(flags, 16) & 1, isRemote: true };
  if (state !== undefined && state.length > 0 && state.length <= 512) {
    try {
      sc.traceState = createTraceState(state);
    } catch {
      // A malformed tracestate is dropped, as the W3C spec asks; the traceparent stands.
    }
  }
  return sc;
}

/** The W3C `traceparent` value of a span context. */
export function formatTraceparent(sc: SpanContext): string {
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 1) === 1 ? "01" : "00"}`;
}

/** Writes a span's context into message (or HTTP) headers as `traceparent` and, when set, `tracestate`. */
export function injectTraceHeaders(span: Span, headers: Record<string, string>): void {
  const sc = span.spanContext();
  if (!trace.isSpanContextValid(sc)) return;
  headers[HEADER_TRACEPARENT] = formatTraceparent(sc);
  const state = sc.traceState?.serialize();
  if (state) headers[HEADER_TRACESTATE] = state;
  else delete headers[HEADER_TRACESTATE];
}

/** The context to start a span in: the headers' trace context when they carry a valid one, else the active context. */
export function parentContext(headers: Readonly<Record<string, string | string[] | undefined>> | undefined): Context {
  const parent = headers?.[HEADER_TRACEPARENT];
  const state = headers?.[HEADER_TRACESTATE];
  const sc = parseTraceparent(typeof parent === "string" ? parent : undefined, typeof state === "string" ? state : undefined);
  return sc ? trace.setSpanContext(ROOT_CONTEXT, sc) : context.active();
}

/** Marks a span failed with an error (its ArqonBus code when it has one) and ends it. */
export function endWithError(span: Span, err: unknown): void {
  const code = typeof err === "object" && err !== null && "code" in err ? String((err as { code: unknown }).code) : undefined;
  if (code !== undefined) span.setAttribute("arqon.error.code", code);
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
  span.end();
}

/** The gateway's tracer and the spans it makes (present on the handler context only when tracing is on). */
export class Tracing {
  /** The tracer every span of this gateway comes from. */
  readonly tracer: Tracer;

  constructor(options: TracingOptions, version: string) {
    this.tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer("@arqon/server", version);
  }

  /** `arqon connect`: one WebSocket upgrade, from the request to the 101 or the refusal. */
  connect(headers: Readonly<Record<string, string | string[] | undefined>>, path: string): Span {
    return this.tracer.startSpan(
      "arqon connect",
      { kind: SpanKind.SERVER, attributes: { "http.request.method": "GET", "url.path": path, "network.protocol.name": "websocket" } },
      parentContext(headers),
    );
  }

  /**
   * `publish <room>`: the publish path of one message (its children are the inspection and the append). Attributes
   * are set only on a span the sampler records: an unsampled publish costs the sampler's decision and little more.
   */
  publish(tenant: string, room: string, path: string, headers: Readonly<Record<string, string>> | undefined): Span {
    const span = this.tracer.startSpan(`publish ${room}`, { kind: SpanKind.PRODUCER }, parentContext(headers));
    if (span.isRecording()) {
      span.setAttributes({
        "messaging.system": "arqon",
        "messaging.operation.type": "send",
        "messaging.destination.name": room,
        "arqon.tenant": tenant,
        "arqon.publish.path": path,
      });
    }
    return span;
  }

  /** A child span of `parent` (the publish's `casil inspect` and `history append`); none under an unsampled parent. */
  child(parent: Span, name: string, attributes?: Attributes): Span {
    if (!parent.isRecording()) return NOT_RECORDING;
    return this.tracer.startSpan(name, { kind: SpanKind.INTERNAL, attributes }, trace.setSpan(ROOT_CONTEXT, parent));
  }

  /**
   * `deliver <room>`: one message handed to this node's subscribers, in the trace of the message's header; undefined
   * for a message whose trace is not sampled (its publisher's sampler decided for the whole trace).
   */
  deliver(tenant: string, room: string, headers: Readonly<Record<string, string>> | undefined, nodeId: string | undefined): Span | undefined {
    const sc = parseTraceparent(headers?.[HEADER_TRACEPARENT], headers?.[HEADER_TRACESTATE]);
    if (sc !== undefined && (sc.traceFlags & 1) === 0) return undefined;
    const span = this.tracer.startSpan(`deliver ${room}`, { kind: SpanKind.CONSUMER }, sc ? trace.setSpanContext(ROOT_CONTEXT, sc) : ROOT_CONTEXT);
    if (span.isRecording()) {
      span.setAttributes({ "messaging.system": "arqon", "messaging.operation.type": "process", "messaging.destination.name": room, "arqon.tenant": tenant });
      if (nodeId !== undefined) span.setAttribute("arqon.node", nodeId);
    }
    return span;
  }

  /** `<METHOD> <route>`: one server API call; the handler runs in its context (a publish in it is its child). */
  api(method: string, route: string, headers: Readonly<Record<string, string | string[] | undefined>>): Span {
    return this.tracer.startSpan(
      `${method} ${route}`,
      { kind: SpanKind.SERVER, attributes: { "http.request.method": method, "http.route": route } },
      parentContext(headers),
    );
  }
}

/** Runs `fn` with `span` as the active span (so that spans started inside, across awaits, are its children). */
export function withSpan<T>(span: Span, fn: () => T): T {
  return context.with(trace.setSpan(context.active(), span), fn);
}
