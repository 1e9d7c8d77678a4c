package arqon

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/arqonbus/arqonbus/packages/sdk-go/arqonpb"
)

// Position is a point in a room's history: the offset of the last message seen and the room's epoch. Offsets grow by
// one per message within an epoch; a new epoch makes older positions meaningless.
type Position struct {
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

// Message is a room message as subscribers and history readers see it (protocol 1.1 frames already expanded).
type Message struct {
	ID   string
	Room string
	// Payload is the JSON value as text, or the raw bytes when Binary is true.
	Payload []byte
	// Binary: Payload holds raw bytes (published as bytes), not JSON.
	Binary  bool
	Headers map[string]string
	Offset  uint64
	Epoch   string
	// Timestamp is the server's receive time, epoch milliseconds.
	Timestamp int64
	// Sender is the publisher's `sub`.
	Sender string
	// Inspection is CASIL's decision when the server reports it.
	Inspection *arqonpb.Inspection
}

// Decode unmarshals a JSON payload into v.
func (m Message) Decode(v any) error {
	if m.Binary {
		return errors.New("arqon: the payload is binary, not JSON")
	}
	return json.Unmarshal(m.Payload, v)
}

// Time is Timestamp as a time.Time.
func (m Message) Time() time.Time { return time.UnixMilli(m.Timestamp) }

// Ack is the server's answer to a publish.
type Ack struct {
	ID     string
	Offset uint64
	Epoch  string
	// Duplicate: a publish with the same idempotency key was stored before; nothing new was delivered.
	Duplicate bool
}

// Member is one entry of a room's presence.
type Member struct {
	ClientID string
	UserID   string
	// Info is the member's presence metadata as JSON text (nil when none).
	Info     json.RawMessage
	JoinedAt int64
	// Connections: when the room presents one entry per user, how many of their connections are in it.
	Connections uint32
	// Reason is why it left, on a leave event when the server says (e.g. "expired").
	Reason string
}

// StateValue is one key of a room's state map.
type StateValue struct {
	// Value is JSON text.
	Value     json.RawMessage
	Version   uint64
	UpdatedAt int64
	UpdatedBy string
}

// StateChange is one changed key in a state_changed event.
type StateChange struct {
	Key     string
	Deleted bool
	StateValue
}

// Subscribed describes a confirmed subscription: the first one, and every renewal after a reconnect.
type Subscribed struct {
	Room string
	// Position is the room's current position as the server reported it.
	Position Position
	// Recovered is set when the subscribe asked to recover from a position: true when every missed message is
	// delivered (they follow, in order), false when that was impossible (see Reason; missed messages are lost to
	// this subscription, read History instead). nil when no recovery was asked.
	Recovered *bool
	// Reason is why recovery failed: epoch_mismatch, position_ahead, retention_exceeded, too_many_missed,
	// unavailable; "server" for a subscription the application's backend made.
	Reason string
	// Resubscribed: a renewal (after a reconnect), not the first subscription.
	Resubscribed bool
	Members      []Member
	State        map[string]StateValue
}

// HistoryOptions select a page of history. Offsets are inclusive; zero values mean "unbounded".
type HistoryOptions struct {
	FromOffset uint64
	ToOffset   uint64
	Limit      uint32
	Reverse    bool
	FromTs     int64
	ToTs       int64
	// TwistID reads one timeline only (x-twist-id).
	TwistID string
}

// HistoryPage is a page of history and the room's position.
type HistoryPage struct {
	Messages []Message
	Position Position
}

// Limits are the limits the server announced in welcome.
type Limits = arqonpb.Limits

// Connected describes a welcomed connection.
type Connected struct {
	ClientID      string
	ServerVersion string
	// Protocol is the wire protocol version in force ("1.0" or "1.1").
	Protocol string
	Limits   *Limits
	// ExpiresAt is the token's expiry (epoch ms), 0 when it does not expire.
	ExpiresAt int64
	// Reconnected: not the first connection of this client.
	Reconnected bool
}

// StatusKind is the state of a client's connection.
type StatusKind string

// The states of a client.
const (
	StatusIdle         StatusKind = "idle"
	StatusConnecting   StatusKind = "connecting"
	StatusConnected    StatusKind = "connected"
	StatusDisconnected StatusKind = "disconnected"
	StatusReconnecting StatusKind = "reconnecting"
	StatusClosed       StatusKind = "closed"
)

// Status is a client's state with what goes with it.
type Status struct {
	Kind StatusKind
	// Code and Reason: the close code and reason (disconnected, closed).
	Code   int
	Reason string
	// WillReconnect (disconnected): whether reconnecting follows.
	WillReconnect bool
	// Attempt and Delay (connecting, reconnecting): the reconnect attempt (0 for the first connect) and its delay.
	Attempt int
	Delay   time.Duration
}

func fromPBMember(m *arqonpb.Member) Member {
	out := Member{ClientID: m.ClientId, UserID: m.UserId, JoinedAt: m.JoinedAt, Connections: m.Connections}
	if len(m.Info) > 0 {
		out.Info = json.RawMessage(m.Info)
	}
	return out
}

func fromPBState(e *arqonpb.StateEntry) StateValue {
	return StateValue{Value: json.RawMessage(e.Value), Version: e.Version, UpdatedAt: e.UpdatedAt, UpdatedBy: e.UpdatedBy}
}

func toMessage(f *arqonpb.Frame, room string) Message {
	m := Message{
		ID: f.Id, Room: f.Room, Payload: f.Payload, Binary: f.PayloadFormat == arqonpb.PayloadFormat_PAYLOAD_FORMAT_BINARY,
		Headers: f.Headers, Offset: f.Offset, Epoch: f.Epoch, Timestamp: f.Timestamp, Sender: f.Sender, Inspection: f.Inspection,
	}
	if m.Room == "" {
		m.Room = room
	}
	if m.Headers == nil {
		m.Headers = map[string]string{}
	}
	if !m.Binary && len(m.Payload) == 0 {
		m.Payload = []byte("null")
	}
	return m
}
