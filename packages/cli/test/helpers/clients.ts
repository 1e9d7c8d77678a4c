import WebSocket from "ws";
import { mintToken, TestClient, type TokenClaims } from "@arqon/server/testing";

/**
 * A JSON TestClient connected to `url` with a token minted from `secret` and `claims`, its welcome read. `track`
 * receives it first, so a test can close every client it opened even when the welcome never comes.
 */
export async function connectClient(url: string, secret: string, claims: TokenClaims, track: (c: TestClient) => void, timeoutMs = 5000): Promise<TestClient> {
  const token = await mintToken(secret, claims);
  const c = new TestClient(new WebSocket(url, { headers: { authorization: `Bearer ${token}` } }), "json");
  track(c);
  c.welcome = await c.next("welcome", undefined, { timeoutMs });
  return c;
}
