"""server - arqon.server against a real gateway: each method round-trips over real HTTP, refusals raise ArqonApiError
with the documented code and status, and a message published through the server API reaches an arqon WebSocket
client."""

from __future__ import annotations

import asyncio
import re
import secrets
from typing import List

import pytest

from arqon import ArqonApiError, ArqonClient, ClientStatus, Message, StateEntry
from arqon.server import SERVER_OPERATIONS, ArqonServerClient, parse_retry_after
from support import REPO, Gateway, until


def operator(gateway: Gateway) -> ArqonServerClient:
    return ArqonServerClient(gateway.http_url, operator_key=gateway.operator_key, tenant="acme")


def fresh_tenant() -> str:
    """A tenant of the test's own on the shared gateway."""
    return f"py-{secrets.token_hex(4)}"


async def test_publish_reaches_an_arqon_websocket_client_with_headers_and_sender(gateway: Gateway, room_name: str) -> None:
    got: List[Message] = []
    async with ArqonClient(gateway.url, token=gateway.token("bob")) as bob:
        await bob.room(room_name).subscribe(got.append)
        async with ArqonServerClient(gateway.url, token=gateway.token("backend", role="server"), tenant="acme") as api:
            ack = await api.publish(room_name, {"text": "from python"}, headers={"x-source": "py"})
            assert ack == {"id": ack["id"], "room": room_name, "offset": 1, "epoch": ack["epoch"], "duplicate": False}
            await until(lambda: len(got) == 1, what="the message")
            assert (got[0].id, got[0].payload, got[0].sender, got[0].headers["x-source"]) == (ack["id"], {"text": "from python"}, "backend", "py")
        async with operator(gateway) as api:
            first = await api.publish(room_name, b"\x01\x02", idempotency_key="once")
            again = await api.publish(room_name, b"\x01\x02", idempotency_key="once")
            assert (first["duplicate"], again["duplicate"]) == (False, True)
            await until(lambda: len(got) == 2, what="the binary message")
            assert (got[1].binary, got[1].payload, got[1].sender) == (True, b"\x01\x02", "operator")
            results = await api.broadcast([room_name, room_name + "-b"], {"n": 1})
            assert [r["room"] for r in results] == [room_name, room_name + "-b"]
            assert all("error" not in r for r in results)


async def test_history_pages_ranges_and_the_async_iterator(gateway: Gateway, room_name: str) -> None:
    async with operator(gateway) as api:
        for i in range(1, 8):
            await api.publish(room_name, {"i": i})
        page = await api.history(room_name)
        assert [m["payload"] for m in page["messages"]] == [{"i": i} for i in range(1, 8)]
        assert page["position"]["offset"] == 7
        assert [m["offset"] for m in (await api.history(room_name, from_offset=3, to_offset=5))["messages"]] == [3, 4, 5]
        assert [m["offset"] for m in (await api.history(room_name, reverse=True, limit=2))["messages"]] == [7, 6]
        assert (await api.history(room_name, to_ts=1))["messages"] == []
        assert [m["offset"] async for m in api.history_messages(room_name, limit=3)] == [1, 2, 3, 4, 5, 6, 7]
        assert [m["offset"] async for m in api.history_messages(room_name, reverse=True, limit=2, from_offset=2)] == [7, 6, 5, 4, 3, 2]
        assert [m["offset"] async for m in api.history_messages(room_name, from_offset=2, to_offset=5, limit=2)] == [2, 3, 4, 5]


async def test_rooms_presence_and_stats_of_live_websocket_clients(gateway: Gateway) -> None:
    tenant = fresh_tenant()
    async with ArqonClient(gateway.url, token=gateway.token("alice", tenant=tenant)) as alice, ArqonClient(
        gateway.url, token=gateway.token("bob", tenant=tenant)
    ) as bob:
        await alice.room("lobby").subscribe()
        await bob.room("lobby").subscribe()
        await bob.room("lab").subscribe()
        async with ArqonServerClient(gateway.http_url, token=gateway.token("root", tenant=tenant, role="admin"), tenant=tenant) as api:
            assert await api.rooms() == [{"room": "lab", "subscribers": 1, "nodes": 1}, {"room": "lobby", "subscribers": 2, "nodes": 1}]
            assert await api.rooms(prefix="lo") == [{"room": "lobby", "subscribers": 2, "nodes": 1}]
            page = await api.rooms_page(limit=1)
            assert page["rooms"] == [{"room": "lab", "subscribers": 1, "nodes": 1}]
            assert await api.rooms_page(limit=1, cursor=page["next"]) == {"rooms": [{"room": "lobby", "subscribers": 2, "nodes": 1}]}
            info = await api.tenant_info()
            assert (info["tenant"], info["connections"], info["subscribers"]) == (tenant, 2, 3)
            assert sorted(m["user"] for m in await api.presence("lobby")) == ["alice", "bob"]
            assert await api.presence_stats("lobby") == {"clients": 2, "users": 2}


async def test_history_remove_subscribe_user_and_info(gateway: Gateway, room_name: str) -> None:
    tenant = fresh_tenant()
    async with ArqonClient(gateway.url, token=gateway.token("carol", tenant=tenant)) as carol:
        pushed: List[str] = []
        carol.on_server_subscribed(lambda room: pushed.append(room.name))
        async with ArqonServerClient(gateway.http_url, operator_key=gateway.operator_key, tenant=tenant) as api:
            before = await api.publish(room_name, {"n": 1})
            removed = await api.history_remove(room_name)
            assert removed["removed"] is True and removed["position"]["offset"] == 0 and removed["position"]["epoch"] != before["epoch"]
            assert (await api.history(room_name))["messages"] == []
            assert await api.subscribe_user("carol", room_name) == {"subscribedHere": 1}
            await until(lambda: pushed == [room_name], what="the server-side subscription")
            assert await api.unsubscribe_user("carol", room_name) == {"unsubscribedHere": 1}
            nodes = await api.info()
            assert nodes["nodes"][0]["self"] is True and nodes["nodes"][0]["id"] == nodes["node"]
        async with ArqonServerClient(gateway.http_url, token=gateway.token("b", tenant=tenant, role="server"), tenant=tenant) as backend:
            with pytest.raises(ArqonApiError) as refused:
                await backend.info()
            assert (refused.value.status, refused.value.code) == (403, "ARQ_FORBIDDEN")


async def test_state_set_reaches_subscribers_and_a_wrong_expected_version_is_409(gateway: Gateway, room_name: str) -> None:
    changes: List[StateEntry] = []
    async with ArqonClient(gateway.url, token=gateway.token("bob")) as bob:
        room = bob.room(room_name)
        room.state.on_change(changes.append)
        await room.subscribe()
        async with operator(gateway) as api:
            assert await api.state_set(room_name, "title", "Draft", expected_version=0) == {"key": "title", "version": 1}
            await until(lambda: any(c.key == "title" for c in changes), what="the state change")
            assert (changes[-1].value, changes[-1].version) == ("Draft", 1)
            with pytest.raises(ArqonApiError) as conflict:
                await api.state_set(room_name, "title", "Lost", expected_version=5)
            assert (conflict.value.status, conflict.value.code) == (409, "ARQ_STATE_CONFLICT")
            entries = await api.state_get(room_name)
            assert [(e["key"], e["value"], e["version"]) for e in entries] == [("title", "Draft", 1)]


async def test_disconnect_and_kick_close_the_users_connections(gateway: Gateway) -> None:
    tenant = fresh_tenant()
    statuses: List[ClientStatus] = []
    carol = ArqonClient(gateway.url, token=gateway.token("carol", tenant=tenant), reconnect=False)
    carol.on_status(statuses.append)
    await carol.connect()
    async with ArqonServerClient(gateway.http_url, operator_key=gateway.operator_key) as api:
        assert await api.disconnect(user="carol", code=4321, reason="bye", tenant=tenant) == {"closedHere": 1}
        await until(lambda: any(s.code == 4321 for s in statuses), what="carol's close")
        assert next(s for s in statuses if s.code == 4321).reason == "bye"
        dave = ArqonClient(gateway.url, token=gateway.token("dave", tenant=tenant), reconnect=False)
        await dave.connect()
        assert await api.kick(user="dave", tenant=tenant) == {"closedHere": 1}
        await until(lambda: not dave.connected, what="dave's close")
    await carol.close()
    await dave.close()


async def test_tenant_administration_round_trip(gateway: Gateway) -> None:
    tenant = fresh_tenant()
    async with ArqonServerClient(gateway.http_url, operator_key=gateway.operator_key) as api:
        created = await api.create_tenant(tenant, limits={"maxConnections": 5}, description="py")
        assert (created["name"], created["status"], created["limits"]) == (tenant, "active", {"maxConnections": 5})
        with pytest.raises(ArqonApiError) as exists:
            await api.create_tenant(tenant)
        assert (exists.value.status, exists.value.code) == (409, "CONFLICT")
        assert tenant in [t["name"] for t in (await api.list_tenants())["tenants"]]
        assert (await api.set_tenant(tenant, limits={"maxConnections": None, "publishRatePerSecond": 9}))["limits"] == {"publishRatePerSecond": 9}
        assert (await api.show_tenant(tenant))["record"]["limits"] == {"publishRatePerSecond": 9}
        assert (await api.disable_tenant(tenant))["record"]["status"] == "disabled"
        assert (await api.enable_tenant(tenant))["status"] == "active"

        admin = ArqonServerClient(gateway.http_url, token=gateway.token("root", tenant=tenant, role="admin"), tenant=tenant)
        async with admin:
            made = await admin.revoke(user="eve", ttl_ms=60_000)
            assert (made["rule"]["user"], made["rule"]["by"], made["closedHere"]) == ("eve", "root", 0)
            assert [r["id"] for r in await admin.revocations()] == [made["rule"]["id"]]
            assert await admin.unrevoke(made["rule"]["id"]) is True
            with pytest.raises(ArqonApiError) as missing:
                await admin.unrevoke(made["rule"]["id"])
            assert (missing.value.status, missing.value.code) == (404, "NOT_FOUND")
            trail = await admin.audit(limit=2)
            assert [r["action"] for r in trail["records"]] == ["tenant.unrevoke", "tenant.unrevoke"]
            assert [r["action"] for r in (await admin.audit(before=trail["next"]))["records"]][:2] == ["tenant.revoke", "tenant.enable"]
            with pytest.raises(ArqonApiError) as operator_only:
                await admin.list_tenants()
            assert (operator_only.value.status, operator_only.value.code, operator_only.value.message) == (403, "ARQ_FORBIDDEN", "this route needs an operator key")

        with pytest.raises(ArqonApiError) as unconfirmed:
            await api.delete_tenant(tenant, confirm="no")
        assert (unconfirmed.value.status, unconfirmed.value.code) == (400, "ARQ_CONFIRMATION_REQUIRED")
        assert set(await api.delete_tenant(tenant, confirm=tenant)) == {"rooms", "stateRooms", "storeKeys"}
        assert "tenant.delete" in [r["action"] for r in (await api.server_audit(limit=50))["records"]]
        # The gateway runs without CASIL: its routes are not there.
        with pytest.raises(ArqonApiError) as no_casil:
            await api.casil_get(tenant=tenant)
        assert (no_casil.value.status, no_casil.value.code) == (404, "NOT_FOUND")


async def test_casil_baseline_and_a_tenant_layer() -> None:
    gw = Gateway(casil=True).start()
    try:
        async with ArqonServerClient(gw.http_url, operator_key=gw.operator_key) as api:
            baseline = await api.casil_baseline()
            assert (baseline["mode"], baseline["layers"]) == ("monitor", [])
            checked = await api.casil_baseline_put(mode="enforce", dry_run=True)
            assert (checked["valid"], checked["dryRun"]) == (True, True)
        async with ArqonServerClient(gw.http_url, token=gw.token("root", role="admin"), tenant="acme") as admin:
            put = await admin.casil_put(policy={"mode": "enforce", "maxPayloadBytes": 2048})
            assert put == {
                "valid": True,
                "dryRun": False,
                "tenant": "acme",
                "version": 1,
                "previousVersion": 0,
                "changes": ["layer created", "mode: unset -> enforce", "maxPayloadBytes: unset -> 2048"],
            }
            assert (await admin.casil_get())["layer"]["version"] == 1
            cleared = await admin.casil_delete()
            assert (cleared["version"], cleared["changes"]) == (2, ["layer removed"])
            with pytest.raises(ArqonApiError) as invalid:
                await admin.casil_put(mode="enforce", clear=True)
            assert (invalid.value.status, invalid.value.code) == (400, "VALIDATION_ERROR")
            with pytest.raises(ArqonApiError) as baseline_refused:
                await admin.casil_baseline()
            assert (baseline_refused.value.status, baseline_refused.value.code) == (403, "ARQ_FORBIDDEN")
    finally:
        gw.stop()


async def test_refusals_carry_the_documented_codes(gateway: Gateway) -> None:
    async with ArqonServerClient(gateway.http_url, tenant="acme") as anonymous:
        with pytest.raises(ArqonApiError) as none:
            await anonymous.rooms()
        assert (none.value.status, none.value.code, none.value.message) == (401, "ARQ_AUTH_MISSING", "an operator key or a bearer token is required")
        assert none.value.retryable is False
    async with ArqonServerClient(gateway.http_url, operator_key="not-the-key", tenant="acme") as wrong:
        with pytest.raises(ArqonApiError) as invalid:
            await wrong.rooms()
        assert (invalid.value.status, invalid.value.code) == (401, "ARQ_AUTH_INVALID")
    async with ArqonServerClient(gateway.http_url, token=gateway.token("b", tenant="beta", role="server"), tenant="acme") as other:
        with pytest.raises(ArqonApiError) as forbidden:
            await other.publish("news", {"x": 1})
        assert (forbidden.value.status, forbidden.value.code, forbidden.value.message) == (403, "ARQ_FORBIDDEN", 'a token of tenant "beta" cannot act on tenant "acme"')
    async with operator(gateway) as api:
        with pytest.raises(ArqonApiError) as limit:
            await api.history("news", limit=0)
        assert (limit.value.status, limit.value.code, limit.value.message) == (400, "VALIDATION_ERROR", "limit must be a whole number from 1 to 1000")
        with pytest.raises(ArqonApiError) as room:
            await api.publish("bad room!", 1)
        assert (room.value.status, room.value.code) == (400, "ARQ_ROOM_INVALID")
        with pytest.raises(ArqonApiError) as route:
            await api.call("GET", "/api/v1/nothing-here")
        assert (route.value.status, route.value.code, route.value.message) == (404, "NOT_FOUND", "no route /api/v1/nothing-here")
        with pytest.raises(ArqonApiError) as big:
            await api.publish("news", "x" * (1024 * 1024 + 10))
        assert (big.value.status, big.value.code) == (413, "ARQ_PAYLOAD_TOO_LARGE")
        # The escape hatch answers what the server answers.
        await api.publish("news-call", {"n": 1})
        answer = await api.call("GET", "/api/v1/tenants/acme/rooms/news-call/history", query={"limit": 1, "reverse": True})
        assert [m["payload"] for m in answer["messages"]] == [{"n": 1}]


async def test_no_server_is_connection_closed_and_options_are_checked() -> None:
    # A port nobody listens on: bind one, note it, close it.
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    async with ArqonServerClient(f"ws://127.0.0.1:{port}/ws", operator_key="k") as api:
        assert api.base_url == f"http://127.0.0.1:{port}"
        with pytest.raises(ArqonApiError) as dead:
            await api.list_tenants()
        assert (dead.value.status, dead.value.code, dead.value.retryable) == (0, "ARQ_CONNECTION_CLOSED", True)
        with pytest.raises(ValueError, match="rooms needs \"tenant\""):
            await api.rooms()
    with pytest.raises(ValueError, match="operator_key or token, not both"):
        ArqonServerClient("http://127.0.0.1:1", operator_key="k", token="t")
    assert parse_retry_after("3") == 3000
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Thu, 01 Jan 2099 00:00:00 GMT", now=4070908800.0 - 60) == 60_000


async def test_a_server_that_never_answers_is_request_timeout() -> None:
    waiting: List[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        waiting.append(writer)  # read the request, answer nothing

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with ArqonServerClient(f"http://127.0.0.1:{port}", operator_key="k", timeout=0.3) as api:
            with pytest.raises(ArqonApiError) as slow:
                await api.list_tenants()
            assert (slow.value.status, slow.value.code) == (0, "ARQ_REQUEST_TIMEOUT")
    finally:
        for w in waiting:
            w.close()
        server.close()
        await server.wait_closed()


def test_every_operation_has_a_method_and_the_same_names_as_the_typescript_client() -> None:
    missing = [name for name in SERVER_OPERATIONS if not callable(getattr(ArqonServerClient, name, None))]
    assert missing == []
    source = (REPO / "packages" / "sdk-ts" / "src" / "server.ts").read_text("utf-8")
    block = source[source.index("export const SERVER_OPERATIONS = {") : source.index("} as const satisfies")]
    ts = {m.group(1): (m.group(2), m.group(3)) for m in re.finditer(r'^  (\w+): \{\s*method: "(\w+)",\s*path: "([^"]+)"', block, re.M)}
    camel = {"".join(p if i == 0 else p.capitalize() for i, p in enumerate(n.split("_"))): route for n, route in SERVER_OPERATIONS.items()}
    assert camel == ts
