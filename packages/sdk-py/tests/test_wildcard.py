"""wildcard subscriptions - ``client.room("<pattern>")`` against a real gateway: messages of every matching room with
their concrete room, none of other rooms, recovery per concrete room after a cut link (0 lost, 0 duplicated, offset
order per room), in both codecs and both protocol versions; the server's refusals (invalid pattern, since)."""

from __future__ import annotations

import asyncio
from typing import Dict, List, Tuple

import pytest

from arqon import ArqonClient, Message, Position, RequestError, Subscribed
from arqon.client import Codec, Protocol
from support import CuttableProxy, Gateway, until


def _by_room(messages: List[Message]) -> Dict[str, List[Tuple[int, int]]]:
    out: Dict[str, List[Tuple[int, int]]] = {}
    for m in messages:
        out.setdefault(m.room, []).append((m.offset, m.payload["n"]))
    return out


@pytest.mark.parametrize("protocol", ["1.1", "1.0"])
@pytest.mark.parametrize("codec", ["json", "protobuf"])
async def test_pattern_gets_matching_rooms_and_recovers_each_after_a_cut(
    gateway: Gateway, room_name: str, codec: Codec, protocol: Protocol
) -> None:
    pattern, room_a, room_b = f"{room_name}:*", f"{room_name}:a", f"{room_name}:b"
    proxy = await CuttableProxy(gateway.port).start()
    got: List[Message] = []
    subscribed: List[Subscribed] = []
    sent: Dict[str, List[Tuple[int, int]]] = {room_a: [], room_b: []}
    try:
        url = f"ws://127.0.0.1:{proxy.port}/ws"
        async with ArqonClient(
            url, token=gateway.token("watcher"), codec=codec, protocol=protocol, backoff_initial=0.2, backoff_max=0.4
        ) as watcher, ArqonClient(gateway.url, token=gateway.token("pub")) as pub:
            room = watcher.room(pattern)
            room.on("subscribed", subscribed.append)
            first = await room.subscribe(got.append)
            assert first.room == pattern and room.subscribed and room.position is None
            # A room object of a matching room that holds no subscription takes none of the pattern's messages.
            idle = watcher.room(room_a)
            idle_got: List[Message] = []
            idle.on("message", idle_got.append)

            async def publish(n: int) -> None:
                target = room_a if n % 2 else room_b
                ack = await pub.room(target).publish({"n": n})
                sent[target].append((ack.offset, n))

            # Not matched: another segment count, another prefix.
            await pub.room(f"{room_name}:a:deeper").publish({"n": -1})
            await pub.room(f"x{room_name}:a").publish({"n": -2})
            for n in range(1, 7):
                await publish(n)
            await until(lambda: len(got) == 6, what="the first six messages")
            await asyncio.sleep(0.1)
            assert [m.room for m in got] == [room_a, room_b] * 3
            assert [m.payload["n"] for m in got] == list(range(1, 7))
            assert all(m.epoch for m in got)
            assert idle_got == [] and idle.position is None and not idle.subscribed

            proxy.cut()
            await until(lambda: not watcher.connected, what="the drop")
            # Missed while away, in both rooms.
            for n in range(7, 13):
                await publish(n)
            await until(lambda: len(subscribed) == 2, timeout=10, what="the resubscription")
            assert subscribed[1].resubscribe is True and subscribed[1].room == pattern
            for n in range(13, 17):
                await publish(n)
            await until(lambda: len(got) >= 16, timeout=10, what="all sixteen messages")
            await asyncio.sleep(0.2)
            # Exactly once each, in offset order per room, with the concrete room.
            assert _by_room(got) == sent
            assert len(got) == 16
    finally:
        await proxy.close()


@pytest.mark.parametrize("codec", ["json", "protobuf"])
async def test_pattern_and_exact_room_on_one_connection_both_get_each_message(gateway: Gateway, room_name: str, codec: Codec) -> None:
    # The server sends each message once per connection (from the room's own subscription here); both room objects
    # get it, and after unsubscribing the pattern only the exact room does.
    pattern, room_a, room_b = f"{room_name}.**", f"{room_name}.a", f"{room_name}.b/c"
    wild: List[Message] = []
    exact: List[Message] = []
    async with ArqonClient(gateway.url, token=gateway.token("both"), codec=codec) as client, ArqonClient(
        gateway.url, token=gateway.token("pub")
    ) as pub:
        await client.room(room_a).subscribe(exact.append)
        await client.room(pattern).subscribe(wild.append)
        acks = [await pub.room(room_a).publish({"n": 1}), await pub.room(room_b).publish({"n": 2}), await pub.room(room_a).publish({"n": 3})]
        await until(lambda: len(wild) == 3 and len(exact) == 2, what="the messages on both room objects")
        assert [(m.room, m.offset, m.payload["n"]) for m in wild] == [(room_a, acks[0].offset, 1), (room_b, acks[1].offset, 2), (room_a, acks[2].offset, 3)]
        assert [m.payload["n"] for m in exact] == [1, 3] and all(m.room == room_a for m in exact)
        assert all(m.epoch == acks[0].epoch for m in wild if m.room == room_a)

        await client.room(pattern).unsubscribe()
        await pub.room(room_b).publish({"n": 4})
        await pub.room(room_a).publish({"n": 5})
        await until(lambda: len(exact) == 3, what="the exact room's next message")
        await asyncio.sleep(0.1)
        assert len(wild) == 3


async def test_the_server_refuses_an_invalid_pattern_and_since_on_a_pattern(gateway: Gateway, room_name: str) -> None:
    async with ArqonClient(gateway.url, token=gateway.token("c")) as client:
        with pytest.raises(RequestError) as invalid:
            await client.room("a:***").subscribe()
        assert invalid.value.code == "ARQ_ROOM_INVALID"
        with pytest.raises(RequestError) as since:
            await client.room(f"{room_name}:*").subscribe(since=Position(1, "e"))
        assert since.value.code == "VALIDATION_ERROR"  # an ArqonError code, not an ARQ_ frame code
        # A pattern is no room to publish to.
        with pytest.raises(RequestError) as publish:
            await client.room(f"{room_name}:*").publish({"n": 1})
        assert publish.value.code == "ARQ_ROOM_INVALID"
        # The refused subscription left nothing behind: a plain subscribe to the pattern works.
        ok = await client.room(f"{room_name}:*").subscribe()
        assert ok.room == f"{room_name}:*"
