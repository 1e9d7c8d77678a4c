"""What the client hands to applications: messages, acks, members, state entries, subscription results, statuses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Literal, Mapping, Optional

__all__ = ["Position", "Message", "Ack", "Member", "StateEntry", "Subscribed", "Welcome", "ClientStatus", "StatusType"]


@dataclass(frozen=True)
class Position:
    """A point in a room's history: the offset of the last message seen, within an epoch."""

    offset: int
    epoch: str

    def to_frame(self) -> Dict[str, Any]:
        return {"offset": self.offset, "epoch": self.epoch}


@dataclass(frozen=True)
class Message:
    """A room message. ``payload`` is the JSON value published, or ``bytes`` when ``binary`` is true."""

    room: str
    payload: Any
    id: str = ""
    offset: int = 0
    epoch: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    timestamp: int = 0
    sender: str = ""
    binary: bool = False
    delta: bool = False
    inspection: Optional[Mapping[str, Any]] = None

    @property
    def position(self) -> Optional[Position]:
        return Position(self.offset, self.epoch) if self.offset and self.epoch else None


@dataclass(frozen=True)
class Ack:
    """The server accepted a publish: the message's id and its position in the room."""

    id: str
    offset: int
    epoch: str
    room: str = ""
    #: True when an earlier publish with the same ``idempotency_key`` was stored within the server's dedupe window:
    #: this one was not delivered again, and ``id``/``offset`` are those of the first.
    duplicate: bool = False


@dataclass(frozen=True)
class Member:
    """One entry of a room's presence set; ``info`` is the member's metadata (a JSON value)."""

    client_id: str = ""
    user_id: str = ""
    info: Any = None
    joined_at: int = 0
    connections: int = 0


@dataclass(frozen=True)
class StateEntry:
    """One key of a room's state map; ``version`` starts at 1 and grows by one per write."""

    key: str
    value: Any = None
    version: int = 0
    deleted: bool = False
    updated_at: int = 0
    updated_by: str = ""


@dataclass(frozen=True)
class Subscribed:
    """The result of a (re)subscription.

    ``recovered`` is None when no recovery was asked (no ``since``), True when every missed message is delivered next
    (before live ones), False when that was impossible; ``reason`` then says why (``epoch_mismatch``,
    ``retention_exceeded``, ...). ``resubscribe`` is true when the client resubscribed by itself after a reconnect.
    ``server`` is true when the application's backend subscribed the connection (server API): the client does not
    renew such a subscription after a reconnect, the backend subscribes again.
    """

    room: str
    offset: int
    epoch: str
    recovered: Optional[bool] = None
    reason: str = ""
    members: List[Member] = field(default_factory=list)
    state: Dict[str, StateEntry] = field(default_factory=dict)
    resubscribe: bool = False
    server: bool = False


@dataclass(frozen=True)
class Welcome:
    """What the server said first: this connection's id, the server version and the limits it runs under.

    ``protocol`` is the wire protocol version in force on the connection: ``"1.1"`` when the client asked for it and
    the server speaks it, ``"1.0"`` otherwise (the client then reads 1.0 frames).
    """

    client_id: str
    version: str
    protocol: str
    limits: Mapping[str, int]
    expires_at: int = 0


StatusType = Literal["connecting", "connected", "disconnected", "reconnecting", "closed"]


@dataclass(frozen=True)
class ClientStatus:
    """A connection status change. ``code``/``reason`` come with ``disconnected`` (and ``closed`` after a server close),
    ``attempt``/``delay`` (seconds) with ``reconnecting``, ``error`` with a terminal ``closed``."""

    type: StatusType
    code: Optional[int] = None
    reason: str = ""
    attempt: int = 0
    delay: float = 0.0
    error: Optional[BaseException] = None
