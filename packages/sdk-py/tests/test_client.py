"""client - the Python SDK against a real gateway: connect, auth, pub/sub with a TypeScript peer in both codecs,
presence, state, commands, typed errors, reconnect and recovery."""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional

import pytest

from arqon import (
    Ack,
    ArqonClient,
    AuthError,
    ClientStatus,
    CommandError,
    ConnectionClosedError,
    Member,
    Message,
    Position,
    RequestError,
    StateConflictError,
    StateEntry,
    Subscribed,
)

from arqon.client import Codec
from support import CuttableProxy, Gateway, until


async def test_connect_receives_welcome(gateway: Gateway) -> None:
    statuses: List[str] = []
    client = ArqonClient(gateway.url, token=gateway.token("alice"))
    client.on_status(lambda s: statuses.append(s.type))
    async with client:
        assert client.connected
        assert client.welcome is not None
        assert client.client_id
        assert client.welcome.protocol == "1.1"  # the SDK asks for 1.1 by default
        assert client.welcome.limits["maxPayloadBytes"] > 0
        rtt = await client.ping()
        assert 0 <= rtt < 5
    assert statuses == ["connecting", "connected", "disconnected", "closed"]
    assert not client.connected


@pytest.mark.parametrize(
    ("make_token", "code"),
    [
        (lambda gw: gw.token("alice")[:-4] + "AAAA", "ARQ_AUTH_INVALID"),
        (lambda gw: "not-a-jwt", "ARQ_AUTH_INVALID"),
        (lambda gw: gw.token("alice", ttl=-3600), "ARQ_AUTH_EXPIRED"),
    ],
    ids=["bad-signature", "garbage", "expired"],
)
async def test_bad_token_is_refused_with_401_and_code(gateway: Gateway, make_token: Any, code: str) -> None:
    client = ArqonClient(gateway.url, token=make_token(gateway))
    with pytest.raises(AuthError) as info:
        await client.connect()
    assert info.value.status == 401
    assert info.value.code == code
    assert info.value.message
    assert client.status.type == "closed"


async def test_unreachable_server_raises_connection_closed() -> None:
    client = ArqonClient("ws://127.0.0.1:9/ws", token="x", open_timeout=2)
    with pytest.raises(ConnectionClosedError) as info:
        await client.connect()
    assert info.value.code == "ARQ_CONNECTION_CLOSED"
    assert info.value.close_code == 1006


@pytest.mark.parametrize(("py_codec", "ts_codec"), [("json", "json"), ("protobuf", "json"), ("json", "protobuf"), ("protobuf", "protobuf")])
async def test_pubsub_between_python_and_typescript(gateway: Gateway, peers: Any, room_name: str, py_codec: str, ts_codec: str) -> None:
    peer = await peers(gateway.url, gateway.token("tess"), ts_codec)
    await peer.send({"type": "subscribe", "room": room_name, "requestId": "s1"})
    await peer.wait_for(lambda f: f.get("requestId") == "s1" and f["type"] == "subscribed")

    received: List[Message] = []
    async with ArqonClient(gateway.url, token=gateway.token("pia"), codec=py_codec) as client:  # type: ignore[arg-type]
        room = client.room(room_name)
        sub = await room.subscribe(received.append)
        assert isinstance(sub, Subscribed)
        assert sub.recovered is None
        assert sorted(m.user_id for m in sub.members) == ["pia", "tess"]

        # TypeScript → Python
        payload = {"text": "héllo ✓ 🚀", "n": [1, 2.5, None, True], "nested": {"deep": [{}]}}
        await peer.send({"type": "publish", "room": room_name, "payload": payload, "headers": {"x-twist-id": "main"}, "requestId": "p1"})
        ts_ack = await peer.wait_for(lambda f: f.get("requestId") == "p1")
        assert ts_ack["type"] == "ack"
        await until(lambda: len(received) == 1, what="the TypeScript message")
        msg = received[0]
        assert msg.payload == payload
        assert msg.sender == "tess"
        assert msg.room == room_name
        assert msg.offset == ts_ack["offset"] and msg.epoch == ts_ack["epoch"]
        assert msg.headers["x-twist-id"] == "main"
        assert int(msg.headers["x-timestamp"]) > 0
        assert msg.binary is False

        # Python → TypeScript, JSON and binary payloads
        ack = await room.publish({"reply": 42, "ok": True}, headers={"X-Twist-Id": "side"})
        assert isinstance(ack, Ack)
        assert ack.offset == msg.offset + 1 and ack.epoch == msg.epoch and ack.id
        got = await peer.wait_for(lambda f: f["type"] == "message" and f.get("id") == ack.id)
        assert got["payload"] == {"reply": 42, "ok": True}
        assert got["sender"] == "pia"
        assert got["headers"]["x-twist-id"] == "side"
        assert got["_binary"] is (ts_codec == "protobuf")

        bin_ack = await room.publish(b"\x00\x01\x02\xff")
        got = await peer.wait_for(lambda f: f["type"] == "message" and f.get("id") == bin_ack.id)
        assert got["payloadFormat"] == "binary" and got["payload"] == "AAEC/w=="

        await peer.send({"type": "publish", "room": room_name, "payload": "AAECA/8=", "payloadFormat": "binary", "requestId": "p2"})
        await until(lambda: len(received) == 2, what="the binary message")
        assert received[1].binary is True and received[1].payload == b"\x00\x01\x02\x03\xff"

        # echo: the publisher's own subscription gets the message only when asked
        await room.publish("scalar", echo=True)
        await until(lambda: len(received) == 3, what="the echoed message")
        assert received[2].payload == "scalar" and received[2].sender == "pia"


async def test_messages_iterator_yields_in_order(gateway: Gateway, room_name: str) -> None:
    token = gateway.token("ida")
    async with ArqonClient(gateway.url, token=token) as reader, ArqonClient(gateway.url, token=gateway.token("pub"), codec="protobuf") as writer:
        room = reader.room(room_name)
        stream = room.messages()
        first = asyncio.ensure_future(stream.__anext__())
        await until(lambda: room.subscribed, what="the iterator to subscribe")
        for i in range(5):
            await writer.room(room_name).publish({"i": i})
        got = [await first] + [await stream.__anext__() for _ in range(4)]
        assert [m.payload["i"] for m in got] == [0, 1, 2, 3, 4]
        assert [m.offset for m in got] == [got[0].offset + i for i in range(5)]
        await reader.close()
        with pytest.raises(StopAsyncIteration):
            await stream.__anext__()


@pytest.mark.parametrize("codec", ["json", "protobuf"])
async def test_a_repeated_idempotent_publish_is_acked_as_a_duplicate(gateway: Gateway, room_name: str, codec: Codec) -> None:
    async with ArqonClient(gateway.url, token=gateway.token("ida"), codec=codec) as client:
        room = client.room(room_name)
        first = await room.publish({"order": 1}, idempotency_key="order-1")
        again = await room.publish({"order": 1}, idempotency_key="order-1")
        other = await room.publish({"order": 2}, idempotency_key="order-2")
        assert (first.duplicate, again.duplicate, other.duplicate) == (False, True, False)
        assert (again.id, again.offset) == (first.id, first.offset)
        assert other.offset == first.offset + 1


async def test_presence_join_leave_members_and_meta(gateway: Gateway, room_name: str) -> None:
    joins: List[Member] = []
    leaves: List[Member] = []
    async with ArqonClient(gateway.url, token=gateway.token("alice")) as alice:
        room = alice.room(room_name)
        room.on_join(joins.append)
        room.on_leave(leaves.append)
        await room.subscribe(meta={"status": "here"})
        bob = ArqonClient(gateway.url, token=gateway.token("bob"), codec="protobuf")
        await bob.connect()
        bob_room = bob.room(room_name)
        sub = await bob_room.subscribe()
        assert {m.user_id for m in sub.members} == {"alice", "bob"}
        assert next(m for m in sub.members if m.user_id == "alice").info == {"status": "here"}
        await until(lambda: any(m.user_id == "bob" for m in joins), what="bob's join")
        assert joins[-1].client_id == bob.client_id

        members = await room.members()
        assert sorted(m.user_id for m in members) == ["alice", "bob"]

        await bob_room.presence.set_meta({"typing": True})
        members = await room.members()
        assert next(m for m in members if m.user_id == "bob").info == {"typing": True}
        assert {m.user_id for m in room.presence.current} >= {"alice", "bob"}

        bob_client_id = bob.client_id
        await bob.close()
        await until(lambda: any(m.user_id == "bob" for m in leaves), what="bob's leave")
        assert leaves[-1].client_id == bob_client_id
        assert all(m.user_id != "bob" for m in room.presence.current)
        assert [m.user_id for m in await room.members()] == ["alice"]


async def test_state_set_get_compare_and_set_and_change_events(gateway: Gateway, room_name: str) -> None:
    changes: List[StateEntry] = []
    async with ArqonClient(gateway.url, token=gateway.token("alice")) as alice, ArqonClient(gateway.url, token=gateway.token("bob"), codec="protobuf") as bob:
        watcher = bob.room(room_name)
        watcher.state.on_change(changes.append)
        await watcher.subscribe()
        state = alice.room(room_name).state

        created = await state.set("mode", "lecture", if_version=0)
        assert created.key == "mode" and created.value == "lecture" and created.version == 1
        updated = await state.set("mode", {"name": "quiz", "round": 2}, if_version=1)
        assert updated.version == 2 and updated.updated_by == "alice"

        with pytest.raises(StateConflictError) as info:
            await state.set("mode", "stale", if_version=1)
        assert info.value.code == "ARQ_STATE_CONFLICT"
        with pytest.raises(StateConflictError):
            await state.set("mode", "again", if_version=0)

        current = await state.get()
        assert current["mode"].value == {"name": "quiz", "round": 2} and current["mode"].version == 2

        await until(lambda: len(changes) >= 2, what="state_changed events")
        assert [(c.key, c.version) for c in changes[:2]] == [("mode", 1), ("mode", 2)]
        assert watcher.state.current["mode"].value == {"name": "quiz", "round": 2}

        await state.delete("mode")
        await until(lambda: any(c.deleted for c in changes), what="the delete event")
        assert "mode" not in await state.get()
        assert "mode" not in watcher.state.current

        with pytest.raises(RequestError) as err:
            await state.set("bad key!", 1)
        assert err.value.code == "ARQ_STATE_KEY_INVALID"


@pytest.mark.parametrize("codec", ["json", "protobuf"])
async def test_commands_return_results_and_typed_errors(gateway: Gateway, codec: str) -> None:
    async with ArqonClient(gateway.url, token=gateway.token("cmd"), codec=codec) as client:  # type: ignore[arg-type]
        result = await client.command("op.test.echo", {"x": [1, "two"]})
        assert result == {"args": {"x": [1, "two"]}, "sub": "cmd", "tenant": "acme"}
        assert (await client.command("op.test.echo"))["args"] is None

        with pytest.raises(CommandError) as info:
            await client.command("op.test.fail", {})
        assert info.value.code == "VALIDATION_ERROR"
        assert info.value.message == "always fails"
        assert info.value.command == "op.test.fail"

        with pytest.raises(CommandError) as info:
            await client.command("op.nope.run")
        assert info.value.code == "NOT_FOUND"


@pytest.mark.parametrize("codec", ["json", "protobuf"])
async def test_rpc_round_trip_through_the_proxy_hook(gateway: Gateway, codec: str) -> None:
    async with ArqonClient(gateway.url, token=gateway.token("rpc-user"), codec=codec) as client:  # type: ignore[arg-type]
        result = await client.rpc("profile.get", {"id": 7, "tags": ["a"]})
        assert result == {"method": "profile.get", "data": {"id": 7, "tags": ["a"]}, "user": "rpc-user"}
        assert (await client.rpc("profile.get"))["data"] is None

        with pytest.raises(RequestError) as info:
            await client.rpc("test.deny", {})
        assert info.value.code == "ARQ_PROXY_DENIED"
        assert info.value.message == "denied by the application backend: denied_by_test"
        assert not info.value.retryable

        with pytest.raises(RequestError) as info:
            await client.rpc("not a method!")
        assert info.value.code == "ARQ_FRAME_WRONG_TYPE"
        await client.ping()


async def test_request_errors_carry_the_server_code(gateway: Gateway) -> None:
    async with ArqonClient(gateway.url, token=gateway.token("err")) as client:
        with pytest.raises(RequestError) as info:
            await client.room("bad room name with spaces!").publish({"x": 1})
        assert info.value.code == "ARQ_ROOM_INVALID"
        assert info.value.request_id
        bad = client.room("a" * 300)
        with pytest.raises(RequestError) as info:
            await bad.subscribe(lambda m: None)
        assert info.value.code == "ARQ_ROOM_INVALID"
        assert not bad.subscribed
        # the connection stays usable after errors
        await client.ping()
        assert client.connected


async def test_reconnect_after_server_restart_on_the_same_port(own_gateway: Gateway, peers: Any, room_name: str) -> None:
    statuses: List[ClientStatus] = []
    subscribed: List[Subscribed] = []
    received: List[Message] = []
    tokens: List[str] = []

    def get_token() -> str:
        tokens.append(own_gateway.token("rita"))
        return tokens[-1]

    client = ArqonClient(own_gateway.url, get_token=get_token, backoff_initial=0.1, backoff_max=0.5)
    client.on_status(statuses.append)
    async with client:
        room = client.room(room_name)
        room.on("subscribed", subscribed.append)
        await room.subscribe(received.append)
        await room.publish({"n": 1}, echo=True)
        await until(lambda: len(received) == 1, what="the first message")
        before = room.position
        assert before is not None and before.offset == 1
        first_client_id = client.client_id

        await asyncio.get_running_loop().run_in_executor(None, own_gateway.restart)
        await until(lambda: len(subscribed) == 2, timeout=20, what="the resubscription")

        again = subscribed[1]
        assert again.resubscribe is True
        # the in-memory history went away with the process: the client is told, never handed a silent gap
        assert again.recovered is False
        assert again.reason == "epoch_mismatch"
        assert again.epoch != before.epoch
        assert client.client_id != first_client_id
        assert len(tokens) >= 2  # get_token was asked again for the reconnect

        kinds = [s.type for s in statuses]
        assert kinds[:2] == ["connecting", "connected"]
        disconnected = next(s for s in statuses if s.type == "disconnected")
        assert disconnected.code == 1001
        reconnecting = [s for s in statuses if s.type == "reconnecting"]
        assert reconnecting and all(0 < s.delay <= 0.5 for s in reconnecting)
        assert kinds[-1] == "connected"

        peer = await peers(own_gateway.url, own_gateway.token("tess"))
        await peer.send({"type": "publish", "room": room_name, "payload": {"n": 2}})
        await until(lambda: len(received) == 2, what="a message after the restart")
        assert received[1].payload == {"n": 2} and received[1].epoch == again.epoch


async def test_resubscribe_recovers_missed_messages_after_a_drop(gateway: Gateway, room_name: str) -> None:
    proxy = await CuttableProxy(gateway.port).start()
    received: List[Message] = []
    subscribed: List[Subscribed] = []
    try:
        url = f"ws://127.0.0.1:{proxy.port}/ws"
        async with ArqonClient(url, token=gateway.token("dora"), codec="protobuf", backoff_initial=0.3, backoff_max=0.6) as client, ArqonClient(
            gateway.url, token=gateway.token("pub")
        ) as publisher:
            room = client.room(room_name)
            room.on("subscribed", subscribed.append)
            await room.subscribe(received.append)
            out = publisher.room(room_name)
            for i in range(3):
                await out.publish({"i": i})
            await until(lambda: len(received) == 3, what="the live messages")

            proxy.cut()
            await until(lambda: not client.connected, what="the drop")
            missed = [await out.publish({"i": i}) for i in range(3, 6)]
            await until(lambda: len(subscribed) == 2, timeout=10, what="the resubscription")
            assert subscribed[1].recovered is True and subscribed[1].resubscribe is True
            await until(lambda: len(received) == 6, what="the recovered messages")
            assert [m.payload["i"] for m in received] == list(range(6))
            assert [m.offset for m in received[3:]] == [a.offset for a in missed]
            assert room.position == Position(missed[-1].offset, missed[-1].epoch)

            # live delivery continues after the recovery, with no duplicate
            await out.publish({"i": 6})
            await until(lambda: len(received) == 7, what="a live message after recovery")
            assert [m.payload["i"] for m in received] == list(range(7))
    finally:
        await proxy.close()


async def test_explicit_since_replays_from_a_position(gateway: Gateway, room_name: str) -> None:
    async with ArqonClient(gateway.url, token=gateway.token("w")) as writer:
        acks = [await writer.room(room_name).publish({"i": i}) for i in range(4)]
    got: List[Message] = []
    async with ArqonClient(gateway.url, token=gateway.token("r"), codec="protobuf") as reader:
        sub = await reader.room(room_name).subscribe(got.append, since=Position(acks[1].offset, acks[1].epoch))
        assert sub.recovered is True
        await until(lambda: len(got) == 2, what="the replayed messages")
        assert [m.payload["i"] for m in got] == [2, 3]
        history = await reader.room(room_name).history(from_offset=acks[0].offset, limit=10)
        assert [m.payload["i"] for m in history] == [0, 1, 2, 3]


async def test_no_reconnect_loop_when_the_restarted_server_refuses_the_token(own_gateway: Gateway) -> None:
    statuses: List[ClientStatus] = []
    client = ArqonClient(own_gateway.url, token=own_gateway.token("ivy"), backoff_initial=0.1, backoff_max=0.2)
    client.on_status(statuses.append)
    await client.connect()
    await asyncio.get_running_loop().run_in_executor(None, lambda: own_gateway.restart(new_secret=True))
    with pytest.raises(AuthError) as info:
        await asyncio.wait_for(client.wait_closed(), 20)
    assert info.value.code == "ARQ_AUTH_INVALID" and info.value.status == 401
    assert statuses[-1].type == "closed" and statuses[-1].error is info.value
    attempts = [s for s in statuses if s.type == "reconnecting"]
    await asyncio.sleep(0.5)
    assert [s for s in statuses if s.type == "reconnecting"] == attempts  # gave up, no further attempts
    with pytest.raises(AuthError):
        await client.room("x").publish(1)
    await client.close()


async def test_get_token_refreshes_before_expiry_without_reconnecting(gateway: Gateway, room_name: str) -> None:
    issued: List[str] = []

    async def get_token() -> str:
        issued.append(gateway.token("tim", ttl=32))  # refreshed 30 s before expiry: after about 2 s
        return issued[-1]

    statuses: List[str] = []
    reported: List[Any] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    async with ArqonClient(gateway.url, get_token=get_token) as client:
        client.on_status(lambda s: statuses.append(s.type))
        first_id = client.client_id
        assert client.welcome is not None
        first_expiry = client.welcome.expires_at
        assert first_expiry > 0
        await until(lambda: client.welcome is not None and client.welcome.expires_at > first_expiry, timeout=10, what="auth_ok")
        assert len(issued) == 2
        assert client.client_id == first_id  # refreshed on the same connection
        assert statuses == [] and reported == []
        ack = await client.room(room_name).publish({"still": "here"})
        assert ack.offset == 1
    loop.set_exception_handler(None)
