"""ArqonBus asyncio client.

```python
from arqon import ArqonClient

async with ArqonClient("ws://127.0.0.1:9100/ws", token=token) as client:
    room = client.room("lobby")
    await room.subscribe(lambda message: print(message.sender, message.payload))
    ack = await room.publish({"text": "hello"})
```
"""

from .client import DEFAULT_URL, SDK_VERSION, ArqonClient, Room, RoomPresence, RoomState
from .errors import (
    CLIENT_CLOSED,
    CONNECTION_CLOSED,
    PROTOCOL_UNSUPPORTED,
    REQUEST_TIMEOUT,
    ArqonApiError,
    ArqonError,
    AuthError,
    CloseCode,
    CommandError,
    ConnectionClosedError,
    FrameDecodeError,
    RequestError,
    RequestTimeoutError,
    StateConflictError,
    should_reconnect,
)
from .types import Ack, ClientStatus, Member, Message, Position, StateEntry, Subscribed, Welcome

__version__ = SDK_VERSION

__all__ = [
    "ArqonClient",
    "Room",
    "RoomPresence",
    "RoomState",
    "DEFAULT_URL",
    "ArqonError",
    "ArqonApiError",
    "AuthError",
    "RequestError",
    "CommandError",
    "StateConflictError",
    "ConnectionClosedError",
    "FrameDecodeError",
    "RequestTimeoutError",
    "CONNECTION_CLOSED",
    "CLIENT_CLOSED",
    "REQUEST_TIMEOUT",
    "PROTOCOL_UNSUPPORTED",
    "CloseCode",
    "should_reconnect",
    "Ack",
    "ClientStatus",
    "Member",
    "Message",
    "Position",
    "StateEntry",
    "Subscribed",
    "Welcome",
    "__version__",
]
