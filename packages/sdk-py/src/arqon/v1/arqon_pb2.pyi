from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FrameType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FRAME_TYPE_UNSPECIFIED: _ClassVar[FrameType]
    FRAME_TYPE_HELLO: _ClassVar[FrameType]
    FRAME_TYPE_WELCOME: _ClassVar[FrameType]
    FRAME_TYPE_SUBSCRIBE: _ClassVar[FrameType]
    FRAME_TYPE_SUBSCRIBED: _ClassVar[FrameType]
    FRAME_TYPE_UNSUBSCRIBE: _ClassVar[FrameType]
    FRAME_TYPE_UNSUBSCRIBED: _ClassVar[FrameType]
    FRAME_TYPE_PUBLISH: _ClassVar[FrameType]
    FRAME_TYPE_ACK: _ClassVar[FrameType]
    FRAME_TYPE_MESSAGE: _ClassVar[FrameType]
    FRAME_TYPE_PRESENCE_JOIN: _ClassVar[FrameType]
    FRAME_TYPE_PRESENCE_LEAVE: _ClassVar[FrameType]
    FRAME_TYPE_PRESENCE_DIFF: _ClassVar[FrameType]
    FRAME_TYPE_PRESENCE_LIST: _ClassVar[FrameType]
    FRAME_TYPE_PRESENCE: _ClassVar[FrameType]
    FRAME_TYPE_PRESENCE_SET: _ClassVar[FrameType]
    FRAME_TYPE_STATE_GET: _ClassVar[FrameType]
    FRAME_TYPE_STATE: _ClassVar[FrameType]
    FRAME_TYPE_STATE_SET: _ClassVar[FrameType]
    FRAME_TYPE_STATE_CHANGED: _ClassVar[FrameType]
    FRAME_TYPE_COMMAND: _ClassVar[FrameType]
    FRAME_TYPE_RESPONSE: _ClassVar[FrameType]
    FRAME_TYPE_HISTORY: _ClassVar[FrameType]
    FRAME_TYPE_HISTORY_PAGE: _ClassVar[FrameType]
    FRAME_TYPE_ERROR: _ClassVar[FrameType]
    FRAME_TYPE_PING: _ClassVar[FrameType]
    FRAME_TYPE_PONG: _ClassVar[FrameType]
    FRAME_TYPE_AUTH: _ClassVar[FrameType]
    FRAME_TYPE_AUTH_OK: _ClassVar[FrameType]
    FRAME_TYPE_RPC: _ClassVar[FrameType]
    FRAME_TYPE_RPC_RESULT: _ClassVar[FrameType]

class PayloadFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PAYLOAD_FORMAT_JSON: _ClassVar[PayloadFormat]
    PAYLOAD_FORMAT_BINARY: _ClassVar[PayloadFormat]
FRAME_TYPE_UNSPECIFIED: FrameType
FRAME_TYPE_HELLO: FrameType
FRAME_TYPE_WELCOME: FrameType
FRAME_TYPE_SUBSCRIBE: FrameType
FRAME_TYPE_SUBSCRIBED: FrameType
FRAME_TYPE_UNSUBSCRIBE: FrameType
FRAME_TYPE_UNSUBSCRIBED: FrameType
FRAME_TYPE_PUBLISH: FrameType
FRAME_TYPE_ACK: FrameType
FRAME_TYPE_MESSAGE: FrameType
FRAME_TYPE_PRESENCE_JOIN: FrameType
FRAME_TYPE_PRESENCE_LEAVE: FrameType
FRAME_TYPE_PRESENCE_DIFF: FrameType
FRAME_TYPE_PRESENCE_LIST: FrameType
FRAME_TYPE_PRESENCE: FrameType
FRAME_TYPE_PRESENCE_SET: FrameType
FRAME_TYPE_STATE_GET: FrameType
FRAME_TYPE_STATE: FrameType
FRAME_TYPE_STATE_SET: FrameType
FRAME_TYPE_STATE_CHANGED: FrameType
FRAME_TYPE_COMMAND: FrameType
FRAME_TYPE_RESPONSE: FrameType
FRAME_TYPE_HISTORY: FrameType
FRAME_TYPE_HISTORY_PAGE: FrameType
FRAME_TYPE_ERROR: FrameType
FRAME_TYPE_PING: FrameType
FRAME_TYPE_PONG: FrameType
FRAME_TYPE_AUTH: FrameType
FRAME_TYPE_AUTH_OK: FrameType
FRAME_TYPE_RPC: FrameType
FRAME_TYPE_RPC_RESULT: FrameType
PAYLOAD_FORMAT_JSON: PayloadFormat
PAYLOAD_FORMAT_BINARY: PayloadFormat

class Position(_message.Message):
    __slots__ = ("offset", "epoch")
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    offset: int
    epoch: str
    def __init__(self, offset: _Optional[int] = ..., epoch: _Optional[str] = ...) -> None: ...

class ErrorInfo(_message.Message):
    __slots__ = ("code", "message", "retryable")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    retryable: bool
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., retryable: bool = ...) -> None: ...

class Member(_message.Message):
    __slots__ = ("client_id", "user_id", "info", "joined_at", "connections")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    JOINED_AT_FIELD_NUMBER: _ClassVar[int]
    CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    user_id: str
    info: bytes
    joined_at: int
    connections: int
    def __init__(self, client_id: _Optional[str] = ..., user_id: _Optional[str] = ..., info: _Optional[bytes] = ..., joined_at: _Optional[int] = ..., connections: _Optional[int] = ...) -> None: ...

class StateEntry(_message.Message):
    __slots__ = ("key", "value", "version", "if_version", "deleted", "updated_at", "updated_by")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    IF_VERSION_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_BY_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: bytes
    version: int
    if_version: int
    deleted: bool
    updated_at: int
    updated_by: str
    def __init__(self, key: _Optional[str] = ..., value: _Optional[bytes] = ..., version: _Optional[int] = ..., if_version: _Optional[int] = ..., deleted: bool = ..., updated_at: _Optional[int] = ..., updated_by: _Optional[str] = ...) -> None: ...

class Limits(_message.Message):
    __slots__ = ("max_payload_bytes", "max_frame_bytes", "max_subscriptions", "publish_rate_per_second", "publish_burst", "ping_interval_ms", "pong_timeout_ms", "max_presence_info_bytes", "max_pending_bytes")
    MAX_PAYLOAD_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_FRAME_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_SUBSCRIPTIONS_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_RATE_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_BURST_FIELD_NUMBER: _ClassVar[int]
    PING_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    PONG_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_PRESENCE_INFO_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_PENDING_BYTES_FIELD_NUMBER: _ClassVar[int]
    max_payload_bytes: int
    max_frame_bytes: int
    max_subscriptions: int
    publish_rate_per_second: int
    publish_burst: int
    ping_interval_ms: int
    pong_timeout_ms: int
    max_presence_info_bytes: int
    max_pending_bytes: int
    def __init__(self, max_payload_bytes: _Optional[int] = ..., max_frame_bytes: _Optional[int] = ..., max_subscriptions: _Optional[int] = ..., publish_rate_per_second: _Optional[int] = ..., publish_burst: _Optional[int] = ..., ping_interval_ms: _Optional[int] = ..., pong_timeout_ms: _Optional[int] = ..., max_presence_info_bytes: _Optional[int] = ..., max_pending_bytes: _Optional[int] = ...) -> None: ...

class HistoryQuery(_message.Message):
    __slots__ = ("from_offset", "to_offset", "limit", "reverse", "from_ts", "to_ts", "twist_id")
    FROM_OFFSET_FIELD_NUMBER: _ClassVar[int]
    TO_OFFSET_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    REVERSE_FIELD_NUMBER: _ClassVar[int]
    FROM_TS_FIELD_NUMBER: _ClassVar[int]
    TO_TS_FIELD_NUMBER: _ClassVar[int]
    TWIST_ID_FIELD_NUMBER: _ClassVar[int]
    from_offset: int
    to_offset: int
    limit: int
    reverse: bool
    from_ts: int
    to_ts: int
    twist_id: str
    def __init__(self, from_offset: _Optional[int] = ..., to_offset: _Optional[int] = ..., limit: _Optional[int] = ..., reverse: bool = ..., from_ts: _Optional[int] = ..., to_ts: _Optional[int] = ..., twist_id: _Optional[str] = ...) -> None: ...

class Inspection(_message.Message):
    __slots__ = ("decision", "reason_code", "flags", "policy_version")
    DECISION_FIELD_NUMBER: _ClassVar[int]
    REASON_CODE_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    decision: str
    reason_code: str
    flags: _containers.RepeatedScalarFieldContainer[str]
    policy_version: int
    def __init__(self, decision: _Optional[str] = ..., reason_code: _Optional[str] = ..., flags: _Optional[_Iterable[str]] = ..., policy_version: _Optional[int] = ...) -> None: ...

class Frame(_message.Message):
    __slots__ = ("type", "id", "request_id", "tenant", "room", "payload", "payload_format", "headers", "offset", "epoch", "since", "recovered", "idempotency_key", "delta", "error", "members", "joined", "left", "state", "command", "args", "status", "token", "client_id", "version", "limits", "echo", "timestamp", "reason", "history", "messages", "sender", "inspection", "expires_at", "info", "protocol", "duplicate", "method", "data")
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ROOM_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FORMAT_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    RECOVERED_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    JOINED_FIELD_NUMBER: _ClassVar[int]
    LEFT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    ECHO_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    INSPECTION_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    type: FrameType
    id: str
    request_id: str
    tenant: str
    room: str
    payload: bytes
    payload_format: PayloadFormat
    headers: _containers.ScalarMap[str, str]
    offset: int
    epoch: str
    since: Position
    recovered: bool
    idempotency_key: str
    delta: bool
    error: ErrorInfo
    members: _containers.RepeatedCompositeFieldContainer[Member]
    joined: _containers.RepeatedCompositeFieldContainer[Member]
    left: _containers.RepeatedCompositeFieldContainer[Member]
    state: _containers.RepeatedCompositeFieldContainer[StateEntry]
    command: str
    args: bytes
    status: str
    token: str
    client_id: str
    version: str
    limits: Limits
    echo: bool
    timestamp: int
    reason: str
    history: HistoryQuery
    messages: _containers.RepeatedCompositeFieldContainer[Frame]
    sender: str
    inspection: Inspection
    expires_at: int
    info: Member
    protocol: str
    duplicate: bool
    method: str
    data: bytes
    def __init__(self, type: _Optional[_Union[FrameType, str]] = ..., id: _Optional[str] = ..., request_id: _Optional[str] = ..., tenant: _Optional[str] = ..., room: _Optional[str] = ..., payload: _Optional[bytes] = ..., payload_format: _Optional[_Union[PayloadFormat, str]] = ..., headers: _Optional[_Mapping[str, str]] = ..., offset: _Optional[int] = ..., epoch: _Optional[str] = ..., since: _Optional[_Union[Position, _Mapping]] = ..., recovered: bool = ..., idempotency_key: _Optional[str] = ..., delta: bool = ..., error: _Optional[_Union[ErrorInfo, _Mapping]] = ..., members: _Optional[_Iterable[_Union[Member, _Mapping]]] = ..., joined: _Optional[_Iterable[_Union[Member, _Mapping]]] = ..., left: _Optional[_Iterable[_Union[Member, _Mapping]]] = ..., state: _Optional[_Iterable[_Union[StateEntry, _Mapping]]] = ..., command: _Optional[str] = ..., args: _Optional[bytes] = ..., status: _Optional[str] = ..., token: _Optional[str] = ..., client_id: _Optional[str] = ..., version: _Optional[str] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ..., echo: bool = ..., timestamp: _Optional[int] = ..., reason: _Optional[str] = ..., history: _Optional[_Union[HistoryQuery, _Mapping]] = ..., messages: _Optional[_Iterable[_Union[Frame, _Mapping]]] = ..., sender: _Optional[str] = ..., inspection: _Optional[_Union[Inspection, _Mapping]] = ..., expires_at: _Optional[int] = ..., info: _Optional[_Union[Member, _Mapping]] = ..., protocol: _Optional[str] = ..., duplicate: bool = ..., method: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...
