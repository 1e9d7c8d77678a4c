"""fake server - close codes (reconnect after 4000-4499 and transient RFC codes, stop after 1000 and 4500-4999),
backoff bounds, request timeouts, closing from a handler, and a delta that does not apply.

A small in-process WebSocket server plays the gateway here, so conditions the real gateway has no way to provoke on
demand (any close code, a corrupt delta, a missing reply) can be exercised through the public API."""

from __future__ import annotations

import asyncio
import json
from typing import Any, List

import pytest
from websockets.asyncio.server import ServerConnection, serve

from arqon import ArqonClient, AuthError, ClientStatus, CloseCode, ConnectionClosedError, RequestTimeoutError, should_reconnect
from support import until


def test_should_reconnect_mirrors_core() -> None:
    assert [c for c in range(4000, 5000) if should_reconnect(c)] == list(range(4000, 4500))
    for code in (1000, 1002, 1003, 1008):
        assert should_reconnect(code) is False
    for code in (1001, 1006, 1009, 1011, 1012, 1013):
        assert should_reconnect(code) is True
    assert int(CloseCode.KICKED) == 4504 and int(CloseCode.SLOW_CONSUMER) == 4000


class ClosingServer:
    """Welcomes each connection, then closes it with the next code from ``codes`` (then stays open)."""

    def __init__(self, codes: List[int]) -> None:
        self.codes = list(codes)
        self.connections = 0

    async def handler(self, ws: ServerConnection) -> None:
        self.connections += 1
        await ws.send(json.dumps({"type": "welcome", "clientId": f"c_{self.connections}", "protocol": "1.0"}))
        if self.codes:
            await ws.close(self.codes.pop(0), "test close")
            return
        async for _ in ws:
            pass


async def run_client(codes: List[int], **options: Any) -> "tuple[ArqonClient, ClosingServer, List[ClientStatus], Any]":
    fake = ClosingServer(codes)
    server = await serve(fake.handler, "127.0.0.1", 0)
    port = next(iter(server.sockets)).getsockname()[1]
    client = ArqonClient(f"ws://127.0.0.1:{port}/ws", token="t", backoff_initial=0.05, backoff_max=0.1, **options)
    statuses: List[ClientStatus] = []
    client.on_status(statuses.append)
    await client.connect()
    return client, fake, statuses, server


@pytest.mark.parametrize("code", [4000, 4001, 4003, 4004, 4499, 1001, 1011, 1012, 1013])
async def test_reconnects_after_reconnect_range_codes(code: int) -> None:
    client, fake, statuses, server = await run_client([code])
    try:
        await until(lambda: fake.connections == 2 and client.connected, what="the reconnect")
        assert client.client_id == "c_2"
        assert [s.type for s in statuses] == ["connecting", "connected", "disconnected", "reconnecting", "connected"]
        assert statuses[2].code == code and statuses[2].reason == "test close"
    finally:
        await client.close()
        server.close()


@pytest.mark.parametrize("code", [1000, 1008, 4501, 4502, 4503, 4504, 4999])
async def test_terminal_codes_stop_the_client(code: int) -> None:
    client, fake, statuses, server = await run_client([code])
    try:
        with pytest.raises(ConnectionClosedError) as info:
            await asyncio.wait_for(client.wait_closed(), 5)
        assert info.value.close_code == code and info.value.terminal
        assert info.value.code == "ARQ_CLIENT_CLOSED"
        assert statuses[-1].type == "closed" and statuses[-1].code == code
        await asyncio.sleep(0.3)
        assert fake.connections == 1  # never reconnected
        with pytest.raises(ConnectionClosedError):
            await client.ping()
    finally:
        await client.close()
        server.close()


async def test_auth_invalid_close_raises_auth_error() -> None:
    client, fake, statuses, server = await run_client([4500])
    try:
        with pytest.raises(AuthError) as info:
            await asyncio.wait_for(client.wait_closed(), 5)
        assert info.value.code == "ARQ_AUTH_INVALID"
        await asyncio.sleep(0.3)
        assert fake.connections == 1
    finally:
        await client.close()
        server.close()


async def test_backoff_is_bounded_and_gives_up_after_max_attempts() -> None:
    fake = ClosingServer([4003])
    server = await serve(fake.handler, "127.0.0.1", 0)
    port = next(iter(server.sockets)).getsockname()[1]
    client = ArqonClient(f"ws://127.0.0.1:{port}/ws", token="t", backoff_initial=0.05, backoff_max=0.2, max_reconnect_attempts=4)
    statuses: List[ClientStatus] = []
    client.on_status(statuses.append)
    await client.connect()
    server.close()  # nothing answers any more
    await server.wait_closed()
    with pytest.raises(ConnectionClosedError) as info:
        await asyncio.wait_for(client.wait_closed(), 10)
    assert "gave up after 4" in info.value.message
    delays = [s.delay for s in statuses if s.type == "reconnecting"]
    assert len(delays) == 4
    assert all(0.025 <= d <= 0.2 for d in delays)
    assert delays[0] <= 0.05 and all(d >= 0.1 for d in delays[2:])  # doubles, then capped with jitter in [d/2, d]
    await client.close()


async def test_requests_wait_for_the_reconnect() -> None:
    fake = ClosingServer([4000])
    replies: List[str] = []

    async def handler(ws: ServerConnection) -> None:
        fake.connections += 1
        await ws.send(json.dumps({"type": "welcome", "clientId": f"c_{fake.connections}"}))
        if fake.connections == 1:
            await asyncio.sleep(0.05)
            await ws.close(4000, "slow consumer")
            return
        async for data in ws:
            frame = json.loads(data)
            replies.append(frame["type"])
            await ws.send(json.dumps({"type": "pong", "requestId": frame["requestId"]}))

    server = await serve(handler, "127.0.0.1", 0)
    port = next(iter(server.sockets)).getsockname()[1]
    client = ArqonClient(f"ws://127.0.0.1:{port}/ws", token="t", backoff_initial=0.2, backoff_max=0.3)
    try:
        await client.connect()
        await until(lambda: not client.connected, what="the close")
        await asyncio.wait_for(client.ping(), 5)  # issued while reconnecting; sent once connected again
        assert replies == ["ping"] and client.client_id == "c_2"
    finally:
        await client.close()
        server.close()


async def test_a_request_without_reply_times_out_with_its_code() -> None:
    fake = ClosingServer([])  # welcomes, then never answers
    server = await serve(fake.handler, "127.0.0.1", 0)
    port = next(iter(server.sockets)).getsockname()[1]
    client = ArqonClient(f"ws://127.0.0.1:{port}/ws", token="t", request_timeout=0.3)
    try:
        await client.connect()
        with pytest.raises(RequestTimeoutError) as info:
            await client.command("op.test.echo", {})
        assert info.value.code == "ARQ_REQUEST_TIMEOUT"
        assert isinstance(info.value, TimeoutError)
        assert client.connected  # a timeout does not end the connection
        started = asyncio.get_running_loop().time()
        with pytest.raises(RequestTimeoutError):
            await client.command("op.test.echo", {}, timeout=0.05)
        assert asyncio.get_running_loop().time() - started < 0.25  # the per-call timeout wins
    finally:
        await client.close()
        server.close()


async def test_close_from_inside_a_handler_and_with_handlers_in_flight() -> None:
    fake = ClosingServer([])
    server = await serve(fake.handler, "127.0.0.1", 0)
    port = next(iter(server.sockets)).getsockname()[1]
    client = ArqonClient(f"ws://127.0.0.1:{port}/ws", token="t")
    reported: List[Any] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    started = asyncio.Event()

    async def slow(status: ClientStatus) -> None:
        if status.type == "connected":
            started.set()
            await asyncio.sleep(30)

    async def closer(status: ClientStatus) -> None:
        if status.type == "connected":
            await started.wait()
            await client.close()

    try:
        client.on_status(slow)
        client.on_status(closer)
        await client.connect()
        await asyncio.wait_for(client.wait_closed(), 5)  # closed by the handler, without error
        assert client.status.type == "closed" and client.status.error is None
        await asyncio.sleep(0.05)
        assert reported == []  # the cancelled slow handler is not reported as a failure
    finally:
        loop.set_exception_handler(None)
        await client.close()
        server.close()


async def test_a_delta_that_does_not_apply_resubscribes_from_the_last_good_position() -> None:
    subscribes: List[Any] = []

    async def handler(ws: ServerConnection) -> None:
        await ws.send(json.dumps({"type": "welcome", "clientId": "c_1"}))
        async for data in ws:
            frame = json.loads(data)
            if frame["type"] != "subscribe":
                continue
            subscribes.append(frame)
            room = frame["room"]
            if len(subscribes) == 1:
                await ws.send(json.dumps({"type": "subscribed", "requestId": frame["requestId"], "room": room, "offset": 1, "epoch": "e"}))
                await ws.send(json.dumps({"type": "message", "room": room, "offset": 2, "epoch": "e", "payload": {"n": 2}}))
                # a delta whose checksum cannot match: the client must not guess
                await ws.send(json.dumps({"type": "message", "room": room, "offset": 3, "epoch": "e", "payload": "Mwo1OjNdfSwzO34=", "payloadFormat": "binary", "delta": True}))
                await ws.send(json.dumps({"type": "message", "room": room, "offset": 4, "epoch": "e", "payload": "MQo3OjJ9MDtE;", "payloadFormat": "binary", "delta": True}))
            else:
                await ws.send(json.dumps({"type": "subscribed", "requestId": frame["requestId"], "room": room, "offset": 4, "epoch": "e", "recovered": True}))
                await ws.send(json.dumps({"type": "message", "room": room, "offset": 3, "epoch": "e", "payload": {"n": 3}}))
                await ws.send(json.dumps({"type": "message", "room": room, "offset": 4, "epoch": "e", "payload": {"n": 4}}))

    server = await serve(handler, "127.0.0.1", 0)
    port = next(iter(server.sockets)).getsockname()[1]
    client = ArqonClient(f"ws://127.0.0.1:{port}/ws", token="t")
    got: List[Any] = []
    errors: List[Any] = []
    try:
        await client.connect()
        room = client.room("ticker")
        room.on("error", errors.append)
        await room.subscribe(lambda m: got.append((m.offset, m.payload, m.delta)), delta=True)
        await until(lambda: len(got) == 3, what="the replayed messages")
        assert got == [(2, {"n": 2}, False), (3, {"n": 3}, False), (4, {"n": 4}, False)]
        assert subscribes[0].get("delta") is True and "since" not in subscribes[0]
        assert subscribes[1]["since"] == {"offset": 2, "epoch": "e"} and subscribes[1].get("delta") is True
        assert len(subscribes) == 2
        assert [e.code for e in errors] == ["ARQ_DELTA_INVALID"]
    finally:
        await client.close()
        server.close()


async def test_a_failing_get_token_is_reported_and_retried() -> None:
    fake = ClosingServer([4003])
    server = await serve(fake.handler, "127.0.0.1", 0)
    port = next(iter(server.sockets)).getsockname()[1]
    calls: List[int] = []

    def get_token() -> str:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("token service down")
        return "t"

    reported: List[Any] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    client = ArqonClient(f"ws://127.0.0.1:{port}/ws", get_token=get_token, backoff_initial=0.05, backoff_max=0.1)
    try:
        await client.connect()
        await until(lambda: fake.connections == 2 and client.connected, what="the reconnect after the token failure")
        assert len(calls) == 3
        assert [type(c.get("exception")) for c in reported] == [RuntimeError]
        assert "reconnect attempt failed" in reported[0]["message"]
    finally:
        loop.set_exception_handler(None)
        await client.close()
        server.close()
