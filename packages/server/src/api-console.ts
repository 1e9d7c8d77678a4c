import { ArqonError, ErrorCode } from "@arqon/core";
import type { ApiRoute } from "./admin-http.js";
import { onlyFields } from "./api-input.js";
import type { AuditLog } from "./audit.js";
import { signToken, type AuthOptions, type Capabilities } from "./auth.js";
import { assertTenantName } from "./tenants.js";

/** Lifetime of a console token, in seconds (the console asks for a new one before it runs out). */
export const CONSOLE_TOKEN_TTL_SEC = 900;

/** What a console token with `access: "read"` may do: follow rooms and see presence, publish nothing, no store. */
export const CONSOLE_READ_CAPS: Capabilities = { sub: ["*"], presence: ["*"], pub: [], store: [] };

/** The HMAC algorithm the server can sign with, when it verifies HS tokens with a secret. */
function signingAlgorithm(auth: AuthOptions): "HS256" | "HS384" | "HS512" | undefined {
  if (auth.secret === undefined) return undefined;
  const accepted = auth.algorithms ?? ["HS256"];
  return (["HS256", "HS384", "HS512"] as const).find((alg) => accepted.includes(alg));
}

/**
 * The console's token route: `POST /api/v1/tenants/:tenant/console-token {access?: "read" | "admin"}` (operator, or an
 * admin of the tenant) mints a short-lived token of that tenant, signed with the server's own HMAC secret, so the web
 * console can open a WebSocket (live tail, operator commands) without ever handing the operator key to the page.
 * `"read"` (the default) holds `CONSOLE_READ_CAPS`; `"admin"` is a `role: "admin"` token of the tenant, which is no
 * more than either caller may already do there. An admin's token keeps the admin's `sub` and `jti` (revocations of
 * the admin's user or token cover it) and never outlives the admin's own token; the operator's says `sub: "operator"`. A server that verifies only
 * public-key tokens cannot sign one: 501 `FEATURE_DISABLED`. Every minted token is audited (`console.token`).
 */
export function consoleRoutes(auth: AuthOptions, audit: AuditLog): ApiRoute[] {
  return [
    {
      method: "POST",
      path: "/api/v1/tenants/:tenant/console-token",
      access: "tenant-admin",
      summary: "mint a short-lived token for the web console",
      async handle({ params, body, principal, actor }) {
        const tenant = params.tenant!;
        assertTenantName(tenant);
        onlyFields(body, ["access"]);
        const access = body.access ?? "read";
        if (access !== "read" && access !== "admin") throw new ArqonError(ErrorCode.VALIDATION_ERROR, '"access" must be "read" or "admin"');
        const algorithm = signingAlgorithm(auth);
        if (!algorithm) throw new ArqonError(ErrorCode.FEATURE_DISABLED, "this server verifies tokens with public keys only and cannot sign a console token");
        const now = Date.now();
        let expiresAt = now + CONSOLE_TOKEN_TTL_SEC * 1000;
        let sub = "operator";
        let jti: string | undefined;
        if (principal.kind === "tenant") {
          sub = principal.auth.sub;
          // A revocation of the admin's token by its jti covers the console tokens it minted too.
          if (typeof principal.auth.claims.jti === "string") jti = principal.auth.claims.jti;
          if (principal.auth.expiresAt !== undefined) expiresAt = Math.min(expiresAt, principal.auth.expiresAt);
        }
        const ttl = Math.floor((expiresAt - now) / 1000);
        if (ttl < 1) throw new ArqonError(ErrorCode.AUTH_EXPIRED, "the token asking expires within a second");
        const issuer = Array.isArray(auth.issuer) ? auth.issuer[0] : auth.issuer;
        const audience = Array.isArray(auth.audience) ? auth.audience[0] : auth.audience;
        return audit.track(
          actor,
          "console.token",
          tenant,
          async () => {
            const token = await signToken({
              secret: auth.secret!,
              sub,
              tenant,
              ttl,
              algorithm,
              // Under the claim names the server reads (signToken writes "role" and "caps"; these win for other names).
              claims: {
                ...(access === "admin" ? { [auth.roleClaim ?? "role"]: "admin" } : { [auth.capsClaim ?? "caps"]: CONSOLE_READ_CAPS }),
                ...(jti !== undefined ? { jti } : {}),
              },
              ...(auth.tenantClaim ? { tenantClaim: auth.tenantClaim } : {}),
              ...(issuer ? { issuer } : {}),
              ...(audience ? { audience } : {}),
            });
            return { status: 201, body: { token, tenant, sub, access, expiresAt: new Date(now + ttl * 1000).toISOString() } };
          },
          () => ({ access, ttlSec: ttl }),
          sub,
        );
      },
    },
  ];
}
