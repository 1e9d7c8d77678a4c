"""protocol - the Python SDK speaks protocol 1.1 by default against a real gateway and reads messages exactly as a
protocol 1.0 client does: the compact frame's epoch comes from the subscription, the default headers come back."""

from __future__ import annotations

from typing import Dict, List

import pytest

from arqon import PROTOCOL_UNSUPPORTED, ArqonClient, ArqonError, FrameDecodeError, Message, Position
from arqon import codec

from support import Gateway, until


async def test_protocol_default_is_1_1_and_1_0_still_connects(gateway: Gateway) -> None:
    async with ArqonClient(gateway.url, token=gateway.token("a")) as c11, ArqonClient(
        gateway.url, token=gateway.token("b"), protocol="1.0"
    ) as c10:
        assert c11.welcome is not None and c11.welcome.protocol == "1.1"
        assert c10.welcome is not None and c10.welcome.protocol == "1.0"
        assert "protocol=1.1" in c11._ws_url()
        assert "protocol" not in c10._ws_url()


def test_protocol_option_must_be_a_known_version() -> None:
    with pytest.raises(ValueError, match=PROTOCOL_UNSUPPORTED):
        ArqonClient("ws://127.0.0.1:1/ws", token="t", protocol="2.0")  # type: ignore[arg-type]


async def test_protocol_unknown_version_in_the_url_is_refused_with_http_400(gateway: Gateway) -> None:
    client = ArqonClient(gateway.url + "?protocol=2.0", token=gateway.token("a"))
    with pytest.raises(ArqonError) as info:
        await client.connect()
    assert info.value.code == PROTOCOL_UNSUPPORTED
    assert info.value.detail == {"status": 400}


async def test_protocol_messages_read_the_same_in_1_1_and_1_0_in_both_codecs(gateway: Gateway, room_name: str) -> None:
    got: Dict[str, List[Message]] = {}
    clients = {
        "json11": ArqonClient(gateway.url, token=gateway.token("r1")),
        "json10": ArqonClient(gateway.url, token=gateway.token("r2"), protocol="1.0"),
        "proto11": ArqonClient(gateway.url, token=gateway.token("r3"), codec="protobuf"),
        "proto10": ArqonClient(gateway.url, token=gateway.token("r4"), codec="protobuf", protocol="1.0"),
    }
    async with ArqonClient(gateway.url, token=gateway.token("alice")) as alice:
        try:
            for name, c in clients.items():
                await c.connect()
                got[name] = []
                await c.room(room_name).subscribe(got[name].append)
            out = alice.room(room_name)
            await out.publish({"text": "hi"})
            await out.publish("twisted", headers={"x-twist-id": "draft-2", "trace": "t1"})
            await out.publish(b"\x01\x02\xff")
            await until(lambda: all(len(v) == 3 for v in got.values()), what="every reader's messages")
            reference = got["json10"]
            first = reference[0]
            assert first.payload == {"text": "hi"} and first.sender == "alice" and first.epoch
            assert first.headers == {"x-timestamp": str(first.timestamp), "x-twist-id": "main"}
            assert reference[1].headers == {"x-twist-id": "draft-2", "trace": "t1", "x-timestamp": str(reference[1].timestamp)}
            assert reference[2].binary and reference[2].payload == b"\x01\x02\xff"
            for name in ("json11", "proto11", "proto10"):
                assert got[name] == reference, name
            # history reads the same too
            h11 = await clients["json11"].room(room_name).history(from_offset=1)
            h10 = await clients["json10"].room(room_name).history(from_offset=1)
            assert h11 == h10 == reference
        finally:
            for c in clients.values():
                await c.close()


@pytest.mark.parametrize("protocol", ["1.1", "1.0"])
async def test_protocol_recovery_since_replays_with_the_subscriptions_epoch(gateway: Gateway, room_name: str, protocol: str) -> None:
    async with ArqonClient(gateway.url, token=gateway.token("w")) as writer:
        acks = [await writer.room(room_name).publish({"i": i}) for i in range(4)]
        got: List[Message] = []
        async with ArqonClient(gateway.url, token=gateway.token("r"), protocol=protocol) as reader:  # type: ignore[arg-type]
            room = reader.room(room_name)
            sub = await room.subscribe(got.append, since=Position(acks[1].offset, acks[1].epoch))
            assert sub.recovered is True and sub.epoch == acks[0].epoch
            await until(lambda: len(got) == 2, what="the replayed messages")
            live = await writer.room(room_name).publish({"i": 4})
            await until(lambda: len(got) == 3, what="a live message")
            assert [(m.offset, m.epoch, m.payload["i"]) for m in got] == [(3, acks[0].epoch, 2), (4, acks[0].epoch, 3), (5, acks[0].epoch, 4)]
            assert room.position == Position(live.offset, live.epoch)


def test_codec_compact_message_round_trip_and_expand() -> None:
    frame = {
        "type": "message",
        "id": "-MD6Qrtr-4821",
        "room": "lobby",
        "payload": {"text": "hi"},
        "headers": {"x-timestamp": "1796597881414", "x-twist-id": "main"},
        "offset": 4821,
        "epoch": "0454dc83f0954fd8",
        "timestamp": 1796597881414,
        "sender": "alice",
    }
    text = codec.encode_json(frame, protocol="1.1", epoch=False)
    assert text == '{"m":"lobby","i":"-MD6Qrtr-4821","o":4821,"t":1796597881414,"s":"alice","p":{"text":"hi"}}'
    assert len(text.encode()) - len('{"text":"hi"}') == 77
    wire = codec.decode_json(text)
    assert "epoch" not in wire and "headers" not in wire
    assert codec.expand_message(wire, "0454dc83f0954fd8") == codec.canonical(frame)
    assert codec.decode_proto(codec.encode_proto(frame, protocol="1.1", epoch=False)) == wire
    # bad compact input gets the codes of the fields it stands for
    with pytest.raises(FrameDecodeError) as info:
        codec.decode_json('{"m":"lobby","o":-1}')
    assert info.value.code == "ARQ_FRAME_WRONG_TYPE"
