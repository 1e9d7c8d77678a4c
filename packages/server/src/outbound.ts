import { lookup as dnsLookup } from "node:dns/promises";
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { request as httpsRequest } from "node:https";
import type { LookupFunction } from "node:net";
import ipaddr from "ipaddr.js";
import { ArqonError, ErrorCode } from "@arqon/core";

/**
 * What the operator allows server-side requests (webhook deliveries, proxy hooks, anything later) to reach. The
 * default is the public internet over HTTPS only.
 */
export interface OutboundOptions {
  /**
   * Hosts, addresses and CIDRs that may be reached although they are not public (development, internal receivers):
   * `"localhost"`, `"hooks.internal.example"` (exact names, case-insensitive), `"127.0.0.1"`, `"::1"`,
   * `"10.20.0.0/16"`. A name on the list may resolve to anything; an address or CIDR admits the addresses it covers.
   * @default []
   */
  allow?: string[];
  /** Allow `http:` targets, not only `https:`. @default false */
  allowHttp?: boolean;
  /** Time one request may take, connection included. @default 5000 */
  timeoutMs?: number;
  /** Response bytes read; the rest is discarded. @default 65536 */
  maxResponseBytes?: number;
  /** Resolves names (tests inject one). @default node:dns lookup with every address */
  resolve?: (hostname: string) => Promise<
    Array<{
      /** An address of the name, as text. */
      address: string;
      /** Its IP version. */
      family: 4 | 6;
    }>
  >;
}

/** A target that passed the guard: the URL, and the addresses it may be reached at. */
export interface CheckedTarget {
  /** The parsed URL. */
  url: URL;
  /** The host as the URL normalized it (no brackets). */
  host: string;
  /** Every address the name resolved to, each checked (a literal address in the URL: that one). */
  addresses: Array<{
    /** The address, as text. */
    address: string;
    /** Its IP version. */
    family: 4 | 6;
  }>;
}

/** What a guarded request answered. A 3xx is not followed: it is an answer like any other. */
export interface OutboundResponse {
  /** The HTTP status code. */
  status: number;
  /** The response headers. */
  headers: IncomingHttpHeaders;
  /** At most `maxResponseBytes` of the body. */
  body: Buffer;
}

/**
 * Why a request failed, as a tenant may see it: a class, never the details (a connection refused and a 500 look the
 * same to someone probing the network through a webhook). The details go to the operator's log.
 */
export type OutboundFailure = "forbidden" | "unresolvable" | "connect" | "timeout" | "http_status" | "redirect";

/**
 * A server-side request refused or failed: code ARQ_OUTBOUND_FORBIDDEN for "forbidden" and "unresolvable",
 * ARQ_OUTBOUND_FAILED for the other failures.
 */
export class OutboundError extends ArqonError {
  constructor(
    /** Why, as a class a tenant may be shown. */
    readonly failure: OutboundFailure,
    message: string,
    options?: ErrorOptions & { detail?: Record<string, unknown> },
  ) {
    super(failure === "forbidden" || failure === "unresolvable" ? ErrorCode.OUTBOUND_FORBIDDEN : ErrorCode.OUTBOUND_FAILED, message, options);
    this.name = "OutboundError";
  }
}

/**
 * IPv6 ranges that embed IPv4 addresses which ipaddr.js files under "unicast": IPv4-compatible addresses (::/96,
 * deprecated by RFC 4291 but still routed by some stacks) and the local-use NAT64 prefix (RFC 8215).
 */
const EMBEDDING_V6 = [ipaddr.parseCIDR("::/96"), ipaddr.parseCIDR("64:ff9b:1::/48")];

/** Addresses a server-side request may reach without the allowlist: public unicast only. */
function isPublic(address: ipaddr.IPv4 | ipaddr.IPv6): boolean {
  if (address.kind() === "ipv6") {
    const v6 = address as ipaddr.IPv6;
    // IPv4-mapped addresses reach the IPv4 address they embed: judge that one.
    if (v6.range() === "ipv4Mapped") return isPublic(v6.toIPv4Address());
    if (EMBEDDING_V6.some((range) => v6.match(range as [ipaddr.IPv6, number]))) return false;
    // 6to4, NAT64 (RFC 6052), Teredo and every other special range embed or route to addresses we cannot judge.
    return v6.range() === "unicast";
  }
  return address.range() === "unicast";
}

interface AllowRule {
  names: Set<string>;
  ranges: Array<[ipaddr.IPv4 | ipaddr.IPv6, number]>;
}

function parseAllow(entries: readonly string[]): AllowRule {
  const rule: AllowRule = { names: new Set(), ranges: [] };
  for (const raw of entries) {
    const entry = raw.trim();
    if (entry === "") continue;
    if (entry.includes("/")) {
      try {
        rule.ranges.push(ipaddr.parseCIDR(entry));
      } catch {
        throw new ArqonError(ErrorCode.VALIDATION_ERROR, `outbound allow entry "${entry}" is not a CIDR`);
      }
    } else if (ipaddr.isValid(entry.replace(/^\[|\]$/g, ""))) {
      const address = ipaddr.parse(entry.replace(/^\[|\]$/g, ""));
      rule.ranges.push([address, address.kind() === "ipv4" ? 32 : 128]);
    } else {
      rule.names.add(entry.toLowerCase());
    }
  }
  return rule;
}

function covered(rule: AllowRule, address: ipaddr.IPv4 | ipaddr.IPv6): boolean {
  for (const [base, bits] of rule.ranges) {
    let candidate = address;
    if (candidate.kind() !== base.kind()) {
      if (candidate.kind() === "ipv6" && (candidate as ipaddr.IPv6).isIPv4MappedAddress()) candidate = (candidate as ipaddr.IPv6).toIPv4Address();
      else continue;
      if (candidate.kind() !== base.kind()) continue;
    }
    if (candidate.match([base, bits] as never)) return true;
  }
  return false;
}

async function resolveAll(hostname: string): Promise<Array<{ address: string; family: 4 | 6 }>> {
  const found = await dnsLookup(hostname, { all: true, verbatim: true });
  return found.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
}

/**
 * The one guard of every request the server makes on its own. It parses the URL with the WHATWG parser (so
 * `http://0x7f000001`, `http://2130706433`, `http://127.1` and `http://0177.0.0.1` all read as 127.0.0.1), accepts
 * `https:` (and `http:` when allowed) only, without credentials in the URL, resolves the name once, refuses unless
 * every address is public unicast (loopback, private, link-local and metadata, CGNAT, unique-local, multicast,
 * unspecified, broadcast, documentation and reserved ranges are not, nor any IPv6 form embedding an IPv4 address:
 * mapped, compatible, 6to4, NAT64, Teredo) or allowlisted, and then connects to the checked address itself, so DNS
 * rebinding cannot switch the target between the check and the connection. Redirects are never followed.
 */
export class OutboundGuard {
  private readonly allow: AllowRule;
  /** Whether `http:` targets are allowed (`OutboundOptions.allowHttp`). */
  readonly allowHttp: boolean;
  /** The time one request may take, in ms, unless the request says otherwise (`OutboundOptions.timeoutMs`). */
  readonly timeoutMs: number;
  /** The most response body bytes read (`OutboundOptions.maxResponseBytes`). */
  readonly maxResponseBytes: number;
  private readonly resolve: NonNullable<OutboundOptions["resolve"]>;

  constructor(options: OutboundOptions = {}) {
    this.allow = parseAllow(options.allow ?? []);
    this.allowHttp = options.allowHttp ?? false;
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.maxResponseBytes = options.maxResponseBytes ?? 65536;
    this.resolve = options.resolve ?? resolveAll;
  }

  /** Checks the URL's form only (scheme, credentials, a literal address): what can be refused without a lookup. */
  parse(raw: string): {
    /** The parsed URL. */
    url: URL;
    /** The host as the URL normalized it (lower case, no brackets). */
    host: string;
  } {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new OutboundError("forbidden", "not a URL");
    }
    if (url.protocol !== "https:" && !(url.protocol === "http:" && this.allowHttp)) {
      throw new OutboundError("forbidden", this.allowHttp ? "only http and https targets are allowed" : "only https targets are allowed (the operator may allow http)");
    }
    if (url.username !== "" || url.password !== "") throw new OutboundError("forbidden", "credentials in the URL are not allowed");
    const host = url.hostname.replace(/^\[|\]$/g, "").toLowerCase();
    if (host === "") throw new OutboundError("forbidden", "the URL has no host");
    if (ipaddr.isValid(host)) this.judge(host, ipaddr.parse(host));
    return { url, host };
  }

  private judge(host: string, address: ipaddr.IPv4 | ipaddr.IPv6): void {
    if (this.allow.names.has(host) || covered(this.allow, address) || isPublic(address)) return;
    throw new OutboundError("forbidden", "the target is not a public address (the operator may allowlist it)", {
      detail: { range: address.kind() === "ipv6" && (address as ipaddr.IPv6).isIPv4MappedAddress() ? (address as ipaddr.IPv6).toIPv4Address().range() : address.range() },
    });
  }

  /** Checks a URL completely: its form, then every address its name resolves to. Throws OutboundError. */
  async check(raw: string): Promise<CheckedTarget> {
    const { url, host } = this.parse(raw);
    if (ipaddr.isValid(host)) {
      const address = ipaddr.parse(host);
      return { url, host, addresses: [{ address: address.toString(), family: address.kind() === "ipv4" ? 4 : 6 }] };
    }
    let addresses: Array<{ address: string; family: 4 | 6 }>;
    try {
      addresses = await this.resolve(host);
    } catch (err) {
      throw new OutboundError("unresolvable", "the target's name does not resolve", { cause: err });
    }
    if (addresses.length === 0) throw new OutboundError("unresolvable", "the target's name does not resolve");
    if (!this.allow.names.has(host)) for (const a of addresses) this.judge(host, ipaddr.parse(a.address));
    return { url, host, addresses };
  }

  /**
   * Sends one request to a checked target's first address (the name is resolved and checked again here, every time).
   * Resolves with the answer, whatever its status; rejects with OutboundError ("connect", "timeout", or the check's).
   */
  async request(raw: string, init: { method?: string; headers?: Record<string, string>; body?: string | Uint8Array; timeoutMs?: number } = {}): Promise<OutboundResponse> {
    const target = await this.check(raw);
    const pinned = target.addresses[0]!;
    // The connection goes to the address just checked, whatever a second lookup would say.
    const lookup: LookupFunction = (_hostname, options, callback) => {
      if ((options as { all?: boolean }).all) (callback as unknown as (e: null, a: Array<{ address: string; family: number }>) => void)(null, [pinned]);
      else callback(null, pinned.address, pinned.family);
    };
    const send = target.url.protocol === "https:" ? httpsRequest : httpRequest;
    const timeoutMs = init.timeoutMs ?? this.timeoutMs;
    const maxBytes = this.maxResponseBytes;
    return new Promise<OutboundResponse>((resolve, reject) => {
      const req = send(target.url, { method: init.method ?? "POST", headers: init.headers, lookup, timeout: timeoutMs, agent: false });
      const timer = setTimeout(() => req.destroy(new OutboundError("timeout", `no answer within ${timeoutMs} ms`)), timeoutMs);
      req.on("error", (err) => {
        clearTimeout(timer);
        reject(err instanceof OutboundError ? err : new OutboundError("connect", "the target could not be reached", { cause: err }));
      });
      req.on("timeout", () => req.destroy(new OutboundError("timeout", `no answer within ${timeoutMs} ms`)));
      req.on("response", (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          if (size >= maxBytes) return;
          chunks.push(chunk.subarray(0, maxBytes - size));
          size += Math.min(chunk.length, maxBytes - size);
          if (size >= maxBytes) res.destroy();
        });
        const done = (): void => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
        };
        res.on("end", done);
        res.on("close", done);
        res.on("error", done);
      });
      req.end(init.body);
    });
  }
}
