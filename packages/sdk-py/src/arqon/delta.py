"""Applying fossil deltas: what the gateway sends to subscribers that opted in with ``delta=True``.

A fossil delta is text-framed: the target size as a base-64 number and a newline, then commands, each a base-64
number followed by a letter: ``N@O,`` copies N bytes of the base from offset O, ``N:`` inserts the N bytes that follow,
``C;`` ends the delta with C, a checksum of the rebuilt payload (the sum, modulo 2^32, of its bytes read as big-endian
32-bit words, the last word padded with zero bytes). Numbers use the digits ``0-9 A-Z _ a-z ~``, most significant
first. Written from that description; the tests check it against the gateway's encoder.
"""

from __future__ import annotations

__all__ = ["DeltaError", "apply_delta", "checksum", "DEFAULT_MAX_OUTPUT_BYTES"]

DEFAULT_MAX_OUTPUT_BYTES = 16 * 1024 * 1024

_DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~"
_VALUE = {ord(c): i for i, c in enumerate(_DIGITS)}


class DeltaError(ValueError):
    """The delta is corrupt, does not fit the base (checksum), or would rebuild more than the allowed size."""


def checksum(data: bytes) -> int:
    """Sum of ``data`` as big-endian 32-bit words (the last one zero-padded), modulo 2^32."""
    rest = len(data) % 4
    if rest:
        data = data + b"\x00" * (4 - rest)
    total = 0
    for i in range(0, len(data), 4):
        total += int.from_bytes(data[i : i + 4], "big")
    return total & 0xFFFFFFFF


class _Reader:
    def __init__(self, delta: bytes) -> None:
        self.delta = delta
        self.pos = 0

    def number(self) -> int:
        value = 0
        start = self.pos
        while self.pos < len(self.delta):
            digit = _VALUE.get(self.delta[self.pos])
            if digit is None:
                break
            value = (value << 6) | digit
            self.pos += 1
        if self.pos == start:
            raise DeltaError(f"a number was expected at byte {start}")
        return value

    def char(self) -> int:
        if self.pos >= len(self.delta):
            raise DeltaError("the delta ends without its checksum")
        c = self.delta[self.pos]
        self.pos += 1
        return c


def output_size(delta: bytes) -> int:
    """The size of the payload ``delta`` rebuilds (read from its header)."""
    reader = _Reader(delta)
    size = reader.number()
    if reader.char() != ord("\n"):
        raise DeltaError("the size header does not end with a newline")
    return size


def apply_delta(base: bytes, delta: bytes, max_bytes: int = DEFAULT_MAX_OUTPUT_BYTES) -> bytes:
    """Rebuilds the payload ``delta`` was made from, given the previous payload ``base``. Raises DeltaError."""
    reader = _Reader(delta)
    size = reader.number()
    if reader.char() != ord("\n"):
        raise DeltaError("the size header does not end with a newline")
    if size > max_bytes:
        raise DeltaError(f"the delta rebuilds {size} bytes, more than {max_bytes}")
    out = bytearray()
    while reader.pos < len(delta):
        count = reader.number()
        op = reader.char()
        if op == ord("@"):
            offset = reader.number()
            if reader.char() != ord(","):
                raise DeltaError("a copy command does not end with a comma")
            if offset + count > len(base):
                raise DeltaError("a copy command reaches past the end of the base")
            if len(out) + count > size:
                raise DeltaError("the delta rebuilds more than its announced size")
            out += base[offset : offset + count]
        elif op == ord(":"):
            if len(out) + count > size:
                raise DeltaError("the delta rebuilds more than its announced size")
            if reader.pos + count > len(delta):
                raise DeltaError("an insert command reaches past the end of the delta")
            out += delta[reader.pos : reader.pos + count]
            reader.pos += count
        elif op == ord(";"):
            if len(out) != size:
                raise DeltaError(f"the delta rebuilt {len(out)} bytes, not the announced {size}")
            if checksum(bytes(out)) != count:
                raise DeltaError("checksum mismatch: the delta does not apply to this base")
            return bytes(out)
        else:
            raise DeltaError(f"unknown delta command {chr(op)!r}")
    raise DeltaError("the delta ends without its checksum")
