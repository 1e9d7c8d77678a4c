"""codec - the shared vectors in proto/vectors decode identically in Python, both ways, and bad input gets its code."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, Dict

import pytest

from arqon import codec
from arqon.errors import FrameDecodeError
from arqon.v1 import arqon_pb2

VECTORS = Path(__file__).resolve().parents[3] / "proto" / "vectors"
FILES = sorted(VECTORS.glob("*.json"))


def test_vectors_exist() -> None:
    # The vector set covers every frame type of the contract; an empty glob must not pass silently.
    assert len(FILES) >= 30
    types = {json.loads(p.read_text("utf-8"))["json"]["type"] for p in FILES}
    assert types == set(codec.FRAME_TYPES[1:])


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_vector_protobuf_to_json(path: Path) -> None:
    vector = json.loads(path.read_text("utf-8"))
    msg = arqon_pb2.Frame()
    msg.ParseFromString(base64.b64decode(vector["protobuf"]))
    assert codec.from_proto(msg) == vector["json"]
    # the same through the byte-level entry points
    assert codec.decode_proto(base64.b64decode(vector["protobuf"])) == vector["json"]
    assert codec.decode_frame(base64.b64decode(vector["protobuf"])) == vector["json"]


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_vector_json_to_protobuf(path: Path) -> None:
    vector = json.loads(path.read_text("utf-8"))
    expected = base64.b64decode(vector["protobuf"])
    # byte-identical to what @arqon/core's protobufjs encoder wrote
    assert codec.encode_proto(vector["json"]) == expected
    parsed = arqon_pb2.Frame()
    parsed.ParseFromString(expected)
    assert codec.to_proto(vector["json"]) == parsed


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_vector_json_text_round_trip(path: Path) -> None:
    vector = json.loads(path.read_text("utf-8"))
    text = codec.encode_json(vector["json"])
    assert json.loads(text) == vector["json"]
    # same key order as the vector (the TS encoder writes fields in proto order)
    assert list(json.loads(text)) == list(vector["json"])
    assert codec.decode_json(text) == vector["json"]


FILES_11 = sorted((VECTORS / "1.1").glob("*.json"))


def test_vectors_1_1_exist() -> None:
    names = {p.stem for p in FILES_11}
    assert {"message", "history_page"} <= names


def _expanded(frame: Dict[str, Any], epoch: str) -> Dict[str, Any]:
    if frame["type"] == "message":
        return codec.expand_message(frame, epoch)
    return {**frame, "messages": [codec.expand_message(m, frame.get("epoch")) for m in frame.get("messages", [])]}


@pytest.mark.parametrize("path", FILES_11, ids=[p.stem for p in FILES_11])
def test_vector_1_1_decodes_encodes_and_expands(path: Path) -> None:
    vector = json.loads(path.read_text("utf-8"))
    assert vector["protocol"] == "1.1"
    text = json.dumps(vector["json"], separators=(",", ":"), ensure_ascii=False)
    data = base64.b64decode(vector["protobuf"])
    from_json = codec.decode_json(text)
    assert codec.decode_proto(data) == from_json
    with_epoch = "e" in vector["json"]
    # byte-identical to what @arqon/core wrote, both faces
    assert codec.encode_json(from_json, protocol="1.1", epoch=with_epoch) == text
    assert codec.encode_proto(from_json, protocol="1.1", epoch=with_epoch) == data
    # the client's view: the subscription's epoch and the default headers put back give the 1.0 frame
    assert _expanded(from_json, vector["epoch"]) == vector["expanded"]
    assert codec.encode_json(vector["expanded"], protocol="1.1", epoch=with_epoch) == text


def test_schema_covers_every_descriptor_field() -> None:
    for name, fields in codec.SCHEMA.items():
        descriptor = getattr(arqon_pb2, name).DESCRIPTOR
        proto_fields = [f.name for f in descriptor.fields if f.name != "type" or name != "Frame"]
        assert [f.snake for f in fields] == proto_fields, name


def test_snake_case_input_and_defaults_are_normalized() -> None:
    frame = codec.decode_json(
        '{"type":"publish","request_id":"1","room":"lobby","payload":{"a":1.0},"echo":false,"offset":0,'
        '"headers":{"X-Twist-Id":"main"},"unknown":3}'
    )
    assert frame == {"type": "publish", "requestId": "1", "room": "lobby", "payload": {"a": 1}, "headers": {"x-twist-id": "main"}}
    assert codec.encode_json(frame) == '{"type":"publish","requestId":"1","room":"lobby","payload":{"a":1},"headers":{"x-twist-id":"main"}}'


def test_bytes_payload_becomes_binary() -> None:
    frame = codec.canonical({"type": "publish", "room": "files", "payload": b"\x00\x01\xff"})
    assert frame == {"type": "publish", "room": "files", "payload": "AAH/", "payloadFormat": "binary"}
    assert codec.decode_proto(codec.encode_proto(frame)) == frame
    assert codec.payload_bytes(frame) == b"\x00\x01\xff"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("not json", "ARQ_FRAME_MALFORMED"),
        ("[1,2]", "ARQ_FRAME_MALFORMED"),
        ('{"room":"lobby"}', "ARQ_FRAME_MISSING_FIELD"),
        ('{"type":7}', "ARQ_FRAME_WRONG_TYPE"),
        ('{"type":"teleport"}', "ARQ_FRAME_UNKNOWN_TYPE"),
        ('{"type":"message","offset":-1}', "ARQ_FRAME_WRONG_TYPE"),
        ('{"type":"message","payload":"%%%","payloadFormat":"binary"}', "ARQ_FRAME_WRONG_TYPE"),
        ('{"type":"state","state":[{"value":1}]}', "ARQ_FRAME_MISSING_FIELD"),
        ('{"type":"message","payload":' + "[" * 40 + "]" * 40 + "}", "ARQ_FRAME_TOO_DEEP"),
    ],
)
def test_bad_json_frames_get_their_code(text: str, code: str) -> None:
    with pytest.raises(FrameDecodeError) as info:
        codec.decode_json(text)
    assert info.value.code == code


def test_bad_protobuf_frames_get_their_code() -> None:
    with pytest.raises(FrameDecodeError) as info:
        codec.decode_proto(b"\xff\xff\xff")
    assert info.value.code == "ARQ_FRAME_MALFORMED"
    with pytest.raises(FrameDecodeError) as info:
        codec.decode_proto(arqon_pb2.Frame(room="x").SerializeToString())
    assert info.value.code == "ARQ_FRAME_MISSING_FIELD"
    not_json = arqon_pb2.Frame(type=arqon_pb2.FRAME_TYPE_MESSAGE, payload=b"\xc3(").SerializeToString()
    with pytest.raises(FrameDecodeError) as info:
        codec.decode_proto(not_json)
    assert info.value.code == "ARQ_FRAME_WRONG_TYPE"
    with pytest.raises(FrameDecodeError) as info:
        codec.decode_proto(b"\x08\x09" + b"\x00" * 10, max_bytes=4)
    assert info.value.code == "ARQ_FRAME_TOO_LARGE"
