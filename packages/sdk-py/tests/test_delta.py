"""delta - fossil deltas from the gateway are rebuilt into full payloads, in both codecs; the decoder refuses corrupt
deltas and wrong bases."""

from __future__ import annotations

import base64
import json
import random
import subprocess
from typing import Any, List, Optional, Tuple

import pytest
from websockets.asyncio.server import ServerConnection, serve

from arqon import ArqonClient, Message
from arqon.delta import DeltaError, apply_delta, checksum
from support import HERE, NODE_ARGS, REPO, Gateway, until


def test_apply_delta_copy_insert_and_checksum() -> None:
    base = b"hello world"
    target = b"hello WORLD!"
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~"

    def num(n: int) -> str:
        out = ""
        while True:
            out = digits[n & 63] + out
            n >>= 6
            if n == 0:
                return out

    delta = f"{num(len(target))}\n{num(6)}@0,{num(6)}:WORLD!{num(checksum(target))};".encode()
    assert apply_delta(base, delta) == target
    with pytest.raises(DeltaError, match="checksum"):
        apply_delta(b"HELLO world", delta)
    with pytest.raises(DeltaError):
        apply_delta(base, delta[:-1])
    with pytest.raises(DeltaError, match="past the end"):
        apply_delta(b"hi", delta)
    with pytest.raises(DeltaError, match="more than"):
        apply_delta(base, delta, max_bytes=4)


def test_checksum_pads_the_last_word() -> None:
    assert checksum(b"") == 0
    assert checksum(b"\x00\x00\x00\x01") == 1
    assert checksum(b"\x01") == 0x01000000
    assert checksum(b"\xff\xff\xff\xff\x00\x00\x00\x02") == 1  # modulo 2^32


def core_deltas(pairs: List[Tuple[bytes, bytes]]) -> List[Optional[bytes]]:
    """Deltas made by @arqon/core's createDelta (the gateway's encoder), through tests/make-deltas.mts."""
    data = json.dumps([[base64.b64encode(a).decode(), base64.b64encode(b).decode()] for a, b in pairs])
    out = subprocess.run([*NODE_ARGS, str(HERE / "make-deltas.mts")], input=data, capture_output=True, text=True, cwd=REPO, timeout=60, check=True)
    return [None if d is None else base64.b64decode(d) for d in json.loads(out.stdout)]


def test_decoder_rebuilds_what_the_core_encoder_made() -> None:
    rng = random.Random(7)
    blob = bytes(rng.randrange(256) for _ in range(5000))
    pairs = [
        (b'{"price":1.2345,"symbol":"EURUSD"}', b'{"price":1.2346,"symbol":"EURUSD"}'),
        ("héllo ✓ 🚀 ".encode() * 30, ("héllo ✓ 🚀 " * 15 + "changed " + "héllo ✓ 🚀 " * 15).encode()),
        (blob, blob[:1000] + b"inserted" + blob[1000:4000] + blob[4100:]),
        (json.dumps({"rows": [[i, i * 2] for i in range(300)]}).encode(), json.dumps({"rows": [[i, i * 2 + (i == 150)] for i in range(300)]}).encode()),
        (b"", b"x" * 100),
    ]
    deltas = core_deltas(pairs)
    assert sum(d is not None for d in deltas) >= 4
    for (base, target), delta in zip(pairs, deltas):
        if delta is not None:
            assert len(delta) < len(target)
            assert apply_delta(base, delta) == target
            if base:  # the same delta on a different base of the same size fails its checksum
                with pytest.raises(DeltaError, match="checksum"):
                    apply_delta(bytes(b ^ 0x55 for b in base), delta)


async def test_client_rebuilds_delta_messages_before_handlers_see_them() -> None:
    """A stand-in gateway sends real deltas (made by @arqon/core) the way the gateway frames them: binary, delta."""
    payloads = [{"symbol": "EURUSD", "bid": 1.08 + i / 10000, "book": ["level"] * 20, "seq": i} for i in range(5)]
    texts = [json.dumps(p, separators=(",", ":")).encode() for p in payloads]
    deltas = core_deltas(list(zip(texts, texts[1:])))
    assert all(d is not None for d in deltas)

    async def handler(ws: ServerConnection) -> None:
        await ws.send(json.dumps({"type": "welcome", "clientId": "c_1"}))
        async for data in ws:
            frame = json.loads(data)
            if frame["type"] == "subscribe":
                assert frame.get("delta") is True
                await ws.send(json.dumps({"type": "subscribed", "requestId": frame["requestId"], "room": "fx", "epoch": "e"}))
                await ws.send(json.dumps({"type": "message", "room": "fx", "offset": 1, "epoch": "e", "payload": payloads[0]}))
                for i, delta in enumerate(deltas, start=2):
                    assert delta is not None
                    await ws.send(json.dumps({"type": "message", "room": "fx", "offset": i, "epoch": "e", "payload": base64.b64encode(delta).decode(), "payloadFormat": "binary", "delta": True}))

    server = await serve(handler, "127.0.0.1", 0)
    port = next(iter(server.sockets)).getsockname()[1]
    got: List[Message] = []
    errors: List[Any] = []
    try:
        async with ArqonClient(f"ws://127.0.0.1:{port}/ws", token="t") as client:
            room = client.room("fx")
            room.on("error", errors.append)
            await room.subscribe(got.append, delta=True)
            await until(lambda: len(got) == len(payloads), what="every message")
            assert [m.payload for m in got] == payloads
            assert not any(m.delta or m.binary for m in got)
            assert errors == []
    finally:
        server.close()


@pytest.mark.parametrize("codec", ["json", "protobuf"])
async def test_delta_subscription_on_the_gateway_gets_full_payloads(gateway: Gateway, room_name: str, codec: str) -> None:
    got: List[Message] = []
    errors: List[Any] = []
    async with ArqonClient(gateway.url, token=gateway.token("dee"), codec=codec) as client, ArqonClient(  # type: ignore[arg-type]
        gateway.url, token=gateway.token("pub")
    ) as publisher:
        room = client.room(room_name)
        room.on("error", errors.append)
        await room.subscribe(got.append, delta=True)
        payloads = [{"symbol": "EURUSD", "bid": 1.08 + i / 10000, "book": ["level"] * 20, "seq": i} for i in range(8)]
        for p in payloads:
            await publisher.room(room_name).publish(p)
        await until(lambda: len(got) == len(payloads), what="every message")
        assert [m.payload for m in got] == payloads
        assert not any(m.delta or m.binary for m in got)
        assert [m.offset for m in got] == list(range(got[0].offset, got[0].offset + len(payloads)))
        assert errors == []
