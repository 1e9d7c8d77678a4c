"""The frame codec: the JSON face of ``arqon.v1.Frame`` and its protobuf twin, mirroring ``@arqon/core``'s codecs.

A frame is handled as its JSON face: a ``dict`` with camelCase keys, ``type`` as a lowercase string, ``payload`` /
``args`` / member ``info`` / state ``value`` as JSON values (a binary payload as base64 text with
``"payloadFormat": "binary"``), and every field holding its default value left out, except ``recovered`` and a state
entry's ``ifVersion``, whose ``False`` / ``0`` carry meaning. Frames in that canonical shape survive
JSON → protobuf → JSON unchanged.

Protocol 1.1 (docs/protocol.md) changes only the message frames the server sends: no ``x-timestamp`` header, no
``x-twist-id`` naming the default timeline ``"main"``, the epoch only when it changed, and in JSON the compact message
object (``{"m":"lobby","i":…,"o":…,"t":…,"s":…,"p":…}``, see :data:`COMPACT_MESSAGE_KEYS`). The decoders read both
versions; :func:`expand_message` turns a 1.1 message back into the frame 1.0 carries.

Functions: :func:`encode_json` / :func:`decode_json` (text WebSocket frames), :func:`encode_proto` /
:func:`decode_proto` (binary frames), :func:`decode_frame` (either), :func:`to_proto` / :func:`from_proto` (the
generated ``arqon_pb2.Frame`` message). Decoding raises :class:`~arqon.errors.FrameDecodeError` with the protocol's
codes (``ARQ_FRAME_MALFORMED``, ``ARQ_FRAME_WRONG_TYPE``, ``ARQ_FRAME_UNKNOWN_TYPE``, ``ARQ_FRAME_MISSING_FIELD``,
``ARQ_FRAME_TOO_LARGE``, ``ARQ_FRAME_TOO_DEEP``); nothing else escapes.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from google.protobuf.message import DecodeError, Message

from .errors import FrameDecodeError
from .v1 import arqon_pb2

__all__ = [
    "FRAME_TYPES",
    "PROTOCOL_VERSIONS",
    "DEFAULT_PROTOCOL_VERSION",
    "DEFAULT_TWIST_ID",
    "COMPACT_MESSAGE_KEYS",
    "expand_message",
    "encode_json",
    "decode_json",
    "encode_proto",
    "decode_proto",
    "decode_frame",
    "to_proto",
    "from_proto",
    "canonical",
    "json_text",
    "DEFAULT_MAX_FRAME_BYTES",
    "DEFAULT_MAX_DEPTH",
]

Frame = Dict[str, Any]

DEFAULT_MAX_FRAME_BYTES = 1024 * 1024
DEFAULT_MAX_DEPTH = 32

#: Every wire protocol version this SDK speaks (``PROTOCOL_VERSIONS`` of ``@arqon/core``).
PROTOCOL_VERSIONS: Tuple[str, ...] = ("1.0", "1.1")
#: What a server uses for a connection that asks for no version.
DEFAULT_PROTOCOL_VERSION = "1.0"
#: The timeline of a message whose publisher named none; protocol 1.1 leaves its ``x-twist-id`` header out.
DEFAULT_TWIST_ID = "main"
_TIMESTAMP = "x-timestamp"
_TWIST = "x-twist-id"

#: Protocol 1.1 compact JSON message object: short key → field of the JSON face, in the order they are written. ``m``
#: (the room) comes first and marks the object as a message (it has no ``type``).
COMPACT_MESSAGE_KEYS: Dict[str, str] = {
    "m": "room",
    "i": "id",
    "o": "offset",
    "e": "epoch",
    "t": "timestamp",
    "s": "sender",
    "h": "headers",
    "c": "inspection",
    "d": "delta",
    "f": "payloadFormat",
    "p": "payload",
}
_COMPACT_FIELDS = frozenset(COMPACT_MESSAGE_KEYS.values()) | {"type"}

#: Frame types in wire order; the index of each name is its protobuf enum number.
FRAME_TYPES: Tuple[str, ...] = tuple(
    name[len("FRAME_TYPE_") :].lower() for name, _ in sorted(arqon_pb2.FrameType.items(), key=lambda item: item[1])
)
_TYPE_NUMBER = {name: i for i, name in enumerate(FRAME_TYPES) if i > 0}

_MAX_UINT64 = (1 << 64) - 1
_MAX_UINT32 = (1 << 32) - 1
_MIN_INT64 = -(1 << 63)
_MAX_INT64 = (1 << 63) - 1


@dataclass(frozen=True)
class _Field:
    name: str  # JSON face (lowerCamelCase)
    snake: str  # proto field name
    kind: str  # string | uint | uint32 | int | bool | boolPresent | uintPresent | json | payload | payloadFormat | headers | stringList | message | list
    message: Optional[str] = None  # for message / list
    required: bool = False


def _f(name: str, kind: str, message: Optional[str] = None, required: bool = False) -> _Field:
    snake = "".join("_" + c.lower() if c.isupper() else c for c in name)
    return _Field(name, snake, kind, message, required)


# One row per field of the wire contract, in proto order (packages/core/src/codec/schema.ts is the twin). A test checks
# this table against the generated descriptor, so a field added to the proto and not here fails loudly.
SCHEMA: Dict[str, Tuple[_Field, ...]] = {
    "Frame": (
        _f("id", "string"),
        _f("requestId", "string"),
        _f("tenant", "string"),
        _f("room", "string"),
        _f("payload", "payload"),
        _f("payloadFormat", "payloadFormat"),
        _f("headers", "headers"),
        _f("offset", "uint"),
        _f("epoch", "string"),
        _f("since", "message", "Position"),
        _f("recovered", "boolPresent"),
        _f("idempotencyKey", "string"),
        _f("delta", "bool"),
        _f("error", "message", "ErrorInfo"),
        _f("members", "list", "Member"),
        _f("joined", "list", "Member"),
        _f("left", "list", "Member"),
        _f("state", "list", "StateEntry"),
        _f("command", "string"),
        _f("args", "json"),
        _f("status", "string"),
        _f("token", "string"),
        _f("clientId", "string"),
        _f("version", "string"),
        _f("limits", "message", "Limits"),
        _f("echo", "bool"),
        _f("timestamp", "int"),
        _f("reason", "string"),
        _f("history", "message", "HistoryQuery"),
        _f("messages", "list", "Frame"),
        _f("sender", "string"),
        _f("inspection", "message", "Inspection"),
        _f("expiresAt", "int"),
        _f("info", "message", "Member"),
        _f("protocol", "string"),
        _f("duplicate", "bool"),
        _f("method", "string"),
        _f("data", "json"),
    ),
    "Position": (_f("offset", "uint"), _f("epoch", "string", required=True)),
    "ErrorInfo": (_f("code", "string", required=True), _f("message", "string", required=True), _f("retryable", "bool")),
    "Member": (
        _f("clientId", "string"),
        _f("userId", "string"),
        _f("info", "json"),
        _f("joinedAt", "int"),
        _f("connections", "uint32"),
    ),
    "StateEntry": (
        _f("key", "string", required=True),
        _f("value", "json"),
        _f("version", "uint"),
        _f("ifVersion", "uintPresent"),
        _f("deleted", "bool"),
        _f("updatedAt", "int"),
        _f("updatedBy", "string"),
    ),
    "Limits": tuple(
        _f(n, "uint32")
        for n in (
            "maxPayloadBytes",
            "maxFrameBytes",
            "maxSubscriptions",
            "publishRatePerSecond",
            "publishBurst",
            "pingIntervalMs",
            "pongTimeoutMs",
            "maxPresenceInfoBytes",
            "maxPendingBytes",
        )
    ),
    "HistoryQuery": (
        _f("fromOffset", "uint"),
        _f("toOffset", "uint"),
        _f("limit", "uint32"),
        _f("reverse", "bool"),
        _f("fromTs", "int"),
        _f("toTs", "int"),
        _f("twistId", "string"),
    ),
    "Inspection": (
        _f("decision", "string"),
        _f("reasonCode", "string"),
        _f("flags", "stringList"),
        _f("policyVersion", "uint32"),
    ),
}

# JSON-face key (camelCase or snake_case) → field, per message.
_BY_KEY: Dict[str, Dict[str, _Field]] = {
    m: {**{f.name: f for f in fields}, **{f.snake: f for f in fields}} for m, fields in SCHEMA.items()
}

_PB_CLASS = {
    "Frame": arqon_pb2.Frame,
    "Position": arqon_pb2.Position,
    "ErrorInfo": arqon_pb2.ErrorInfo,
    "Member": arqon_pb2.Member,
    "StateEntry": arqon_pb2.StateEntry,
    "Limits": arqon_pb2.Limits,
    "HistoryQuery": arqon_pb2.HistoryQuery,
    "Inspection": arqon_pb2.Inspection,
}


def _fault(code: str, message: str, field: Optional[str] = None) -> FrameDecodeError:
    return FrameDecodeError(code, message, field=field)


def _wrong(path: str, what: str) -> FrameDecodeError:
    return _fault("ARQ_FRAME_WRONG_TYPE", f'"{path}" must be {what}', path)


# ---------------------------------------------------------------------------------------------------------------
# JSON values ↔ bytes


def _plain(value: Any) -> Any:
    """The value as JavaScript's JSON.stringify would see it: integral floats become ints (``1.0`` → ``1``)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("JSON values cannot be NaN or infinite")
        return int(value) if value.is_integer() and abs(value) < 1e21 else value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def json_text(value: Any) -> str:
    """Compact JSON text of a JSON value, byte-identical to ``JSON.stringify`` for the values both languages share."""
    return json.dumps(_plain(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _json_bytes(value: Any) -> bytes:
    return json_text(value).encode("utf-8")


def _parse_json_bytes(data: bytes, path: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _fault(
            "ARQ_FRAME_WRONG_TYPE", f'"{path}" must hold UTF-8 JSON (set payload_format to binary for raw bytes)', path
        ) from None


def _b64decode(text: str, path: str) -> bytes:
    try:
        padded = text + "=" * (-len(text) % 4)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raise _wrong(path, "valid base64 when payloadFormat is binary") from None


# ---------------------------------------------------------------------------------------------------------------
# Canonical JSON face (normalizing input: snake_case keys, defaults dropped, headers lowered, types checked)


def canonical(frame: Mapping[str, Any]) -> Frame:
    """Normalizes a JSON-face frame: camelCase keys in proto order, defaults dropped, types checked.

    ``payload`` may also be given as ``bytes`` (it is then sent as a binary payload). Raises FrameDecodeError.
    """
    if not isinstance(frame, Mapping):
        raise _fault("ARQ_FRAME_MALFORMED", "frame must be a JSON object")
    return _read_frame(frame, "")


def _is_compact(obj: Mapping[str, Any]) -> bool:
    return obj.get("type") is None and obj.get("m") is not None


def _read_compact(obj: Mapping[str, Any], path: str) -> Frame:
    """A protocol 1.1 compact message object as the message frame it stands for (what the wire had)."""
    table = _BY_KEY["Frame"]
    binary = obj.get("f") == "binary"
    found: Dict[str, Any] = {}
    for key, value in obj.items():
        name = COMPACT_MESSAGE_KEYS.get(key)
        if name is None or value is None:
            continue  # unknown keys are ignored (forward compatibility)
        converted = _read_value(table[name], value, path + key, binary)
        if converted is not _ABSENT:
            found[name] = converted
    out: Frame = {"type": "message"}
    for spec in SCHEMA["Frame"]:  # proto order, as the 1.0 decoder gives it
        if spec.name in found:
            out[spec.name] = found[spec.name]
    return out


def _read_frame(obj: Mapping[str, Any], path: str) -> Frame:
    if _is_compact(obj):
        return _read_compact(obj, path)
    type_ = obj.get("type")
    if type_ is None:
        raise _fault("ARQ_FRAME_MISSING_FIELD", f'frame needs "{path}type"', path + "type")
    if not isinstance(type_, str):
        raise _wrong(path + "type", "a string")
    if type_ not in _TYPE_NUMBER:
        raise _fault("ARQ_FRAME_UNKNOWN_TYPE", f'unknown frame type "{type_[:64]}"', path + "type")
    fmt = obj.get("payloadFormat", obj.get("payload_format"))
    if fmt is None and isinstance(obj.get("payload"), (bytes, bytearray)):
        obj, fmt = {**obj, "payloadFormat": "binary"}, "binary"
    out: Frame = {"type": type_}
    out.update(_read_fields(obj, "Frame", path, fmt == "binary"))
    return out


def _read_fields(obj: Mapping[str, Any], message: str, path: str, binary: bool) -> Dict[str, Any]:
    table = _BY_KEY[message]
    found: Dict[str, Any] = {}
    for key, value in obj.items():
        spec = table.get(key)
        if spec is None or value is None:
            continue  # unknown fields are ignored (forward compatibility)
        converted = _read_value(spec, value, path + spec.name, binary)
        if converted is not _ABSENT:
            found[spec.name] = converted
    out: Dict[str, Any] = {}
    for spec in SCHEMA[message]:  # proto order
        if spec.name in found:
            out[spec.name] = found[spec.name]
        elif spec.required and message != "Frame":
            if message in ("ErrorInfo", "Position"):
                out[spec.name] = ""
            else:
                raise _fault("ARQ_FRAME_MISSING_FIELD", f'"{path.rstrip(".")}" needs "{spec.name}"', path + spec.name)
    return out


class _Absent:
    pass


_ABSENT: Any = _Absent()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _read_value(spec: _Field, value: Any, path: str, binary: bool) -> Any:
    kind = spec.kind
    if kind == "string":
        if not isinstance(value, str):
            raise _wrong(path, "a string")
        return _ABSENT if value == "" and not spec.required else value
    if kind in ("uint", "uintPresent"):
        if not _is_int(value) or value < 0 or value > _MAX_UINT64:
            raise _wrong(path, "a non-negative integer")
        return _ABSENT if value == 0 and kind == "uint" else value
    if kind == "uint32":
        if not _is_int(value) or value < 0 or value > _MAX_UINT32:
            raise _wrong(path, "an integer from 0 to 4294967295")
        return _ABSENT if value == 0 else value
    if kind == "int":
        if not _is_int(value) or not _MIN_INT64 <= value <= _MAX_INT64:
            raise _wrong(path, "an integer")
        return _ABSENT if value == 0 else value
    if kind == "bool":
        if not isinstance(value, bool):
            raise _wrong(path, "true or false")
        return True if value else _ABSENT
    if kind == "boolPresent":
        if not isinstance(value, bool):
            raise _wrong(path, "true or false")
        return value
    if kind == "payload":
        if binary:
            if isinstance(value, (bytes, bytearray)):
                return base64.b64encode(bytes(value)).decode("ascii") if value else _ABSENT
            if not isinstance(value, str):
                raise _wrong(path, "a base64 string when payloadFormat is binary")
            raw = _b64decode(value, path)
            return base64.b64encode(raw).decode("ascii") if raw else _ABSENT
        return _json_value(value, path)
    if kind == "json":
        return _json_value(value, path)
    if kind == "payloadFormat":
        if value not in ("json", "binary"):
            raise _wrong(path, '"json" or "binary"')
        return "binary" if value == "binary" else _ABSENT
    if kind == "headers":
        if not isinstance(value, Mapping):
            raise _wrong(path, "an object of strings")
        headers: Dict[str, str] = {}
        for name, v in value.items():
            if not isinstance(v, str):
                raise _wrong(f"{path}.{name}", "a string")
            headers[str(name).lower()] = v
        return headers if headers else _ABSENT
    if kind == "stringList":
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise _wrong(path, "a list of strings")
        return list(value) if value else _ABSENT
    if kind == "message":
        if not isinstance(value, Mapping):
            raise _wrong(path, "an object")
        assert spec.message is not None
        return _read_fields(value, spec.message, path + ".", False)
    # list
    if not isinstance(value, (list, tuple)):
        raise _wrong(path, "a list")
    if not value:
        return _ABSENT
    items = []
    for i, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise _wrong(f"{path}[{i}]", "an object")
        if spec.message == "Frame":
            items.append(_read_frame(item, f"{path}[{i}]."))
        else:
            assert spec.message is not None
            items.append(_read_fields(item, spec.message, f"{path}[{i}].", False))
    return items


def _json_value(value: Any, path: str) -> Any:
    """A JSON value as it round-trips through JSON text (checks that it is serializable)."""
    try:
        return json.loads(json_text(value))
    except (TypeError, ValueError) as err:
        raise _wrong(path, f"a JSON value ({err})") from None


# ---------------------------------------------------------------------------------------------------------------
# JSON text


def encode_json(frame: Mapping[str, Any], *, protocol: str = DEFAULT_PROTOCOL_VERSION, epoch: bool = True) -> str:
    """The JSON face of a frame as compact text (fields in proto order, defaults left out).

    ``protocol="1.1"`` writes a message frame (and the messages of a ``messages`` list) as the compact message object,
    with its epoch only when ``epoch`` is true (list messages: when it differs from the list frame's), byte-identical
    to ``encodeJson(frame, {protocol: "1.1"})`` of ``@arqon/core``.
    """
    canon = canonical(frame)
    if protocol == "1.1":
        if canon["type"] == "message":
            return json_text(_compact(canon, epoch))
        if "messages" in canon:
            listed = dict(canon)
            listed["messages"] = [
                _compact(m, m.get("epoch") != canon.get("epoch")) if m["type"] == "message" else m for m in canon["messages"]
            ]
            return json_text(listed)
    return json_text(canon)


def _headers_11(frame: Mapping[str, Any]) -> Dict[str, str]:
    ts = frame.get("timestamp")
    out: Dict[str, str] = {}
    for name, value in frame.get("headers", {}).items():
        if name == _TIMESTAMP and ts is not None and value == str(ts):
            continue
        if name == _TWIST and value == DEFAULT_TWIST_ID:
            continue
        out[name] = value
    return out


def _reduced_11(frame: Frame, with_epoch: bool) -> Frame:
    """A canonical message frame with what protocol 1.1 leaves out removed (default headers, the epoch if told)."""
    out = dict(frame)
    headers = _headers_11(frame)
    if headers:
        out["headers"] = headers
    else:
        out.pop("headers", None)
    if not with_epoch:
        out.pop("epoch", None)
    return out


def _compact(frame: Frame, with_epoch: bool) -> Dict[str, Any]:
    reduced = _reduced_11(frame, with_epoch)
    if any(k not in _COMPACT_FIELDS for k in reduced):
        return reduced  # a field without a compact key: the 1.0 shape, with the 1.1 omissions
    out: Dict[str, Any] = {"m": reduced.get("room", "")}
    for key, name in COMPACT_MESSAGE_KEYS.items():
        if key != "m" and name in reduced:
            out[key] = reduced[name]
    return out


def expand_message(frame: Mapping[str, Any], epoch: Optional[str]) -> Frame:
    """A message received on a protocol 1.1 connection as protocol 1.0 carries it: ``epoch`` (when the frame has none)
    is the one the subscription was last told, ``x-timestamp`` comes back from ``timestamp`` and ``x-twist-id`` is
    ``"main"`` when the message names no timeline. Frames of other types come back unchanged."""
    if frame.get("type") != "message":
        return dict(frame)
    out: Frame = dict(frame)
    if "epoch" not in out and epoch:
        out["epoch"] = epoch
    headers = dict(out.get("headers", {}))
    if "timestamp" in out and _TIMESTAMP not in headers:
        headers[_TIMESTAMP] = str(out["timestamp"])
    if _TWIST not in headers:
        headers[_TWIST] = DEFAULT_TWIST_ID
    out["headers"] = headers
    ordered: Frame = {}
    for key in ["type"] + [spec.name for spec in SCHEMA["Frame"]]:  # proto order, as the 1.0 decoder gives it
        if key in out:
            ordered[key] = out[key]
    return ordered


def _depth_exceeds(text: str, limit: int) -> bool:
    depth = 0
    in_string = False
    escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            depth += 1
            if depth > limit:
                return True
        elif ch in "}]":
            depth -= 1
    return False


def decode_json(
    text: Union[str, bytes], *, max_bytes: int = DEFAULT_MAX_FRAME_BYTES, max_depth: int = DEFAULT_MAX_DEPTH
) -> Frame:
    """Parses a JSON-face frame (text WebSocket frame) into its canonical form. Raises FrameDecodeError."""
    if isinstance(text, (bytes, bytearray)):
        if len(text) > max_bytes:
            raise _fault("ARQ_FRAME_TOO_LARGE", f"frame exceeds {max_bytes} bytes")
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise _fault("ARQ_FRAME_MALFORMED", "frame is not valid UTF-8") from None
    if len(text) > max_bytes or (len(text) * 3 > max_bytes and len(text.encode("utf-8", "surrogatepass")) > max_bytes):
        raise _fault("ARQ_FRAME_TOO_LARGE", f"frame exceeds {max_bytes} bytes")
    if _depth_exceeds(text, max_depth):
        raise _fault("ARQ_FRAME_TOO_DEEP", f"frame nests deeper than {max_depth} levels")
    try:
        raw = json.loads(text)
    except ValueError:
        raise _fault("ARQ_FRAME_MALFORMED", "frame is not valid JSON") from None
    if not isinstance(raw, dict):
        raise _fault("ARQ_FRAME_MALFORMED", "frame must be a JSON object")
    return _read_frame(raw, "")


# ---------------------------------------------------------------------------------------------------------------
# protobuf


def to_proto(frame: Mapping[str, Any]) -> arqon_pb2.Frame:
    """The generated ``arqon.v1.Frame`` message for a JSON-face frame."""
    canon = canonical(frame)
    msg = arqon_pb2.Frame()
    _fill_frame(msg, canon)
    return msg


def _fill_frame(msg: arqon_pb2.Frame, frame: Frame) -> None:
    msg.type = _TYPE_NUMBER[frame["type"]]  # type: ignore[assignment]  # the enum is an int at run time
    _fill(msg, frame, "Frame", frame.get("payloadFormat") == "binary")


def _fill(msg: Message, obj: Mapping[str, Any], message: str, binary: bool) -> None:
    for spec in SCHEMA[message]:
        if spec.name not in obj:
            continue
        value = obj[spec.name]
        kind = spec.kind
        if kind == "payload":
            setattr(msg, spec.snake, _b64decode(value, spec.name) if binary else _json_bytes(value))
        elif kind == "json":
            setattr(msg, spec.snake, _json_bytes(value))
        elif kind == "payloadFormat":
            setattr(msg, spec.snake, arqon_pb2.PAYLOAD_FORMAT_BINARY if value == "binary" else arqon_pb2.PAYLOAD_FORMAT_JSON)
        elif kind == "headers":
            getattr(msg, spec.snake).update(value)
        elif kind == "stringList":
            getattr(msg, spec.snake).extend(value)
        elif kind == "message":
            sub = getattr(msg, spec.snake)
            sub.SetInParent()
            _fill(sub, value, spec.message or "", False)
        elif kind == "list":
            container = getattr(msg, spec.snake)
            for item in value:
                child = container.add()
                if spec.message == "Frame":
                    _fill_frame(child, item)
                else:
                    _fill(child, item, spec.message or "", False)
        else:
            setattr(msg, spec.snake, value)


def encode_proto(frame: Mapping[str, Any], *, protocol: str = DEFAULT_PROTOCOL_VERSION, epoch: bool = True) -> bytes:
    """Protobuf bytes (``arqon.v1.Frame``) of a JSON-face frame; map entries in sorted order (deterministic).

    ``protocol="1.1"``: message frames leave out the default headers and, unless ``epoch``, the epoch (as
    :func:`encode_json`; the schema is the same)."""
    canon = canonical(frame)
    if protocol == "1.1":
        if canon["type"] == "message":
            canon = _reduced_11(canon, epoch)
        elif "messages" in canon:
            canon = dict(canon)
            canon["messages"] = [
                _reduced_11(m, m.get("epoch") != frame.get("epoch")) if m["type"] == "message" else m for m in canon["messages"]
            ]
    data: bytes = to_proto(canon).SerializeToString(deterministic=True)
    return data


def from_proto(msg: arqon_pb2.Frame) -> Frame:
    """The canonical JSON face of a generated ``arqon.v1.Frame``. Raises FrameDecodeError."""
    return _from_frame(msg, "")


def _from_frame(msg: arqon_pb2.Frame, path: str) -> Frame:
    n: int = msg.type
    if n == 0:
        raise _fault("ARQ_FRAME_MISSING_FIELD", f'frame needs "{path}type"', path + "type")
    if n >= len(FRAME_TYPES):
        raise _fault("ARQ_FRAME_UNKNOWN_TYPE", f"unknown frame type {n}", path + "type")
    out: Frame = {"type": FRAME_TYPES[n]}
    out.update(_from_fields(msg, "Frame", path, msg.payload_format == arqon_pb2.PAYLOAD_FORMAT_BINARY))
    return out


def _from_fields(msg: Message, message: str, path: str, binary: bool) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for spec in SCHEMA[message]:
        kind = spec.kind
        name = path + spec.name
        if kind in ("boolPresent", "uintPresent", "message"):
            if not msg.HasField(spec.snake):
                if spec.required:
                    out[spec.name] = ""
                continue
        value = getattr(msg, spec.snake)
        if kind == "string":
            if value != "" or spec.required:
                out[spec.name] = value
        elif kind in ("uint", "uint32", "int"):
            if value != 0:
                out[spec.name] = value
        elif kind in ("uintPresent", "boolPresent"):
            out[spec.name] = value
        elif kind == "bool":
            if value:
                out[spec.name] = True
        elif kind == "payload":
            if value:
                out[spec.name] = base64.b64encode(value).decode("ascii") if binary else _parse_json_bytes(value, name)
        elif kind == "json":
            if value:
                out[spec.name] = _parse_json_bytes(value, name)
        elif kind == "payloadFormat":
            if value == arqon_pb2.PAYLOAD_FORMAT_BINARY:
                out[spec.name] = "binary"
            elif value != arqon_pb2.PAYLOAD_FORMAT_JSON:
                raise _wrong(name, "a known payload format")
        elif kind == "headers":
            if len(value):
                out[spec.name] = {k.lower(): value[k] for k in sorted(value)}
        elif kind == "stringList":
            if len(value):
                out[spec.name] = list(value)
        elif kind == "message":
            out[spec.name] = _from_fields(value, spec.message or "", name + ".", False)
        else:  # list
            if len(value):
                if spec.message == "Frame":
                    out[spec.name] = [_from_frame(item, f"{name}[{i}].") for i, item in enumerate(value)]
                else:
                    out[spec.name] = [_from_fields(item, spec.message or "", f"{name}[{i}].", False) for i, item in enumerate(value)]
    if message == "StateEntry" and "key" not in out:
        raise _fault("ARQ_FRAME_MISSING_FIELD", f'"{path.rstrip(".")}" needs "key"', path + "key")
    return out


def decode_proto(data: Union[bytes, bytearray, memoryview], *, max_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> Frame:
    """Decodes protobuf bytes (a binary WebSocket frame) into the canonical JSON face. Raises FrameDecodeError."""
    if len(data) > max_bytes:
        raise _fault("ARQ_FRAME_TOO_LARGE", f"frame exceeds {max_bytes} bytes")
    msg = arqon_pb2.Frame()
    try:
        msg.ParseFromString(bytes(data))
    except (DecodeError, RuntimeError, ValueError):
        raise _fault("ARQ_FRAME_MALFORMED", "frame is not a valid arqon.v1.Frame") from None
    return from_proto(msg)


def decode_frame(data: Union[str, bytes, bytearray, memoryview], *, max_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> Frame:
    """Protocol normalization: text is the JSON face, bytes are protobuf; both decode to the same frame."""
    if isinstance(data, str):
        return decode_json(data, max_bytes=max_bytes)
    return decode_proto(data, max_bytes=max_bytes)


def payload_bytes(frame: Mapping[str, Any]) -> Optional[bytes]:
    """The raw bytes of a binary payload (``payloadFormat: "binary"``), or None for a JSON payload."""
    if frame.get("payloadFormat") != "binary":
        return None
    value = frame.get("payload")
    return _b64decode(value, "payload") if isinstance(value, str) else b""


def required_keys(message: str) -> List[str]:
    """Field names (JSON face) of a message, in proto order; for tests that compare the table with the descriptor."""
    return [f.name for f in SCHEMA[message]]
