package arqon

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"regexp"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/arqonbus/arqonbus/packages/sdk-go/arqonpb"
)

// SubscribeOptions apply to a subscription and to its renewals after reconnects.
type SubscribeOptions struct {
	// Since recovers from this position: the messages after it are delivered first (see Subscribed.Recovered).
	Since *Position
	// Meta is this connection's initial presence metadata in the room (any JSON value).
	Meta any
	// Delta asks the server for delta-compressed payloads (fossil deltas against the previous payload, rebuilt by the
	// SDK before the handler sees them). Set on the first Subscribe, it stays for the renewals.
	Delta bool
}

// PublishOptions tune a publish.
type PublishOptions struct {
	// Headers: lower-case names, at most 64; `x-twist-id` puts the message on a named timeline.
	Headers map[string]string
	// IdempotencyKey: delivered once within the server's dedupe window, however often it is published.
	IdempotencyKey string
	// Echo delivers the message to this connection too (the publisher is excluded by default).
	Echo bool
}

// SetOptions make a state write compare-and-set.
type SetOptions struct {
	// IfVersion writes only if the key is at this version (0: only if it does not exist); otherwise the write is
	// refused with ARQ_STATE_CONFLICT.
	IfVersion *uint64
}

// IfVersion is a helper for SetOptions.IfVersion.
func IfVersion(v uint64) SetOptions { return SetOptions{IfVersion: &v} }

var roomNameRE = regexp.MustCompile(`^[A-Za-z0-9_\-.:@/=+!]{1,200}$`)

// compilePattern turns a room pattern (the capability syntax: `*` any run of characters within one segment, segments
// separated by `:`, `/` or `.`; `**` anything) into an anchored regular expression.
func compilePattern(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(pattern); {
		switch {
		case strings.HasPrefix(pattern[i:], "**"):
			b.WriteString(".*")
			i += 2
		case pattern[i] == '*':
			b.WriteString("[^:/.]*")
			i++
		default:
			j := strings.IndexByte(pattern[i:], '*')
			if j < 0 {
				j = len(pattern) - i
			}
			b.WriteString(regexp.QuoteMeta(pattern[i : i+j]))
			i += j
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// heldFrames are the live messages of one concrete room that a wildcard subscription holds back while it catches up
// with that room's history after a reconnect.
type heldFrames struct{ frames []*arqonpb.Frame }

// maxCatchUpPages bounds the history pages one catch-up reads (each page moves forward, so this is only a guard).
const maxCatchUpPages = 10000

// Room is one room as seen by one client; Client.Room returns the same *Room every time. A subscription survives
// reconnects: the client re-subscribes with the last position it saw and reports whether everything was recovered.
// Handlers set with On* run on the client's handler goroutine, one at a time, in order.
type Room struct {
	c    *Client
	name string
	// glob is a wildcard subscription's pattern (the name has a `*`) as a regular expression; nil for a plain room.
	glob *regexp.Regexp

	// guarded by c.mu
	position       *Position
	epoch          string
	wanted         bool
	subscribed     bool
	inflight       bool
	generation     int
	everSubscribed bool
	meta           []byte
	delta          bool
	base           []byte // the previous payload this subscription received, for deltas
	baseBinary     bool
	hasBase        bool
	deltaBroken    bool // a delta did not apply: messages are ignored until the renewal lands
	deltasApplied  int  // for the tests
	waiters        []chan subResult
	members        map[string]Member
	state          map[string]StateValue

	// A wildcard subscription's last delivered position per concrete room (its recovery starts there), the rooms it
	// is catching up with (their live messages wait), and an explicit Since, sent once for the server to refuse.
	seen      map[string]Position
	held      map[string]*heldFrames
	globSince *Position

	onMessage        func(Message)
	onSubscribed     func(Subscribed)
	onUnsubscribed   func(reason string)
	onError          func(error)
	onJoin           func(Member)
	onLeave          func(Member)
	onPresenceChange func([]Member)
	onStateChange    func([]StateChange)
}

type subResult struct {
	ev  Subscribed
	err error
}

func newRoom(c *Client, name string) *Room {
	r := &Room{c: c, name: name, members: map[string]Member{}, state: map[string]StateValue{}}
	if strings.Contains(name, "*") {
		r.glob = compilePattern(name)
		r.seen = map[string]Position{}
		r.held = map[string]*heldFrames{}
	}
	return r
}

// Name is the room's name.
func (r *Room) Name() string { return r.name }

// IsPattern reports whether the name is a room pattern (it has a `*`): a wildcard subscription, which gets the
// messages of every room of the tenant that the pattern matches, each with its concrete room in Message.Room.
func (r *Room) IsPattern() bool { return r.glob != nil }

// Position is the last position this client saw in the room (sent as `since` when re-subscribing); nil before any.
func (r *Room) Position() *Position {
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	if r.position == nil {
		return nil
	}
	p := *r.position
	return &p
}

// Subscribed reports whether the server currently confirms the subscription.
func (r *Room) Subscribed() bool {
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	return r.subscribed
}

// OnMessage sets the message handler (replacing the one given to Subscribe): live and recovered messages in offset
// order, duplicates dropped.
func (r *Room) OnMessage(h func(Message)) { r.set(func() { r.onMessage = h }) }

// OnSubscribed is called at every confirmed (re)subscription; Recovered false means missed messages were lost.
func (r *Room) OnSubscribed(h func(Subscribed)) { r.set(func() { r.onSubscribed = h }) }

// OnUnsubscribed is called when the subscription ends: "client" after Unsubscribe, else the server's reason
// ("server" when the application's backend ended it, "forbidden", ...).
func (r *Room) OnUnsubscribed(h func(reason string)) { r.set(func() { r.onUnsubscribed = h }) }

// OnError receives the room's failures that belong to no request (a renewal the server refused after a reconnect,
// which ends the subscription).
func (r *Room) OnError(h func(error)) { r.set(func() { r.onError = h }) }

// OnJoin is called for each member that joins.
func (r *Room) OnJoin(h func(Member)) { r.set(func() { r.onJoin = h }) }

// OnLeave is called for each member that leaves (as last known, with Reason when the server gave one).
func (r *Room) OnLeave(h func(Member)) { r.set(func() { r.onLeave = h }) }

// OnPresenceChange is called with the member list after every change.
func (r *Room) OnPresenceChange(h func([]Member)) { r.set(func() { r.onPresenceChange = h }) }

// OnStateChange is called with the entries changed by anyone (this client included).
func (r *Room) OnStateChange(h func([]StateChange)) { r.set(func() { r.onStateChange = h }) }

func (r *Room) set(fn func()) {
	r.c.mu.Lock()
	fn()
	r.c.mu.Unlock()
}

func (r *Room) check() error {
	if !roomNameRE.MatchString(r.name) {
		return newError(CodeRoomInvalid, fmt.Sprintf("room name %q: 1-200 letters, digits and _ - . : @ / = + !", r.name))
	}
	return nil
}

// Subscribe subscribes (or changes the handler of an existing subscription; nil keeps the current one) and returns
// once the server confirmed it; if the client is not connected yet (Connect not called, or reconnecting), once it
// is, or when ctx ends (the subscription stays wanted: it is sent at the next welcome). The subscription is renewed after
// every reconnect with the last seen position.
//
// A room whose name is a pattern ("orders:*") is a wildcard subscription: the server checks the pattern
// (ARQ_ROOM_INVALID), refuses Since on it, and the SDK recovers each concrete room it delivered after a reconnect.
func (r *Room) Subscribe(ctx context.Context, handler func(Message), opts ...SubscribeOptions) (Subscribed, error) {
	if r.glob == nil {
		if err := r.check(); err != nil {
			return Subscribed{}, err
		}
	}
	var o SubscribeOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	var meta []byte
	if o.Meta != nil {
		b, err := jsonBytes(o.Meta)
		if err != nil {
			return Subscribed{}, err
		}
		meta = b
	}
	c := r.c
	c.mu.Lock()
	if c.status.Kind == StatusClosed {
		c.mu.Unlock()
		return Subscribed{}, newError(CodeClientClosed, "the client is closed")
	}
	if handler != nil {
		r.onMessage = handler
	}
	if o.Since != nil {
		p := *o.Since
		if r.glob != nil {
			r.globSince = &p
		} else {
			r.position = &p
		}
	}
	if meta != nil {
		r.meta = meta
	}
	if o.Delta {
		r.delta = true
	}
	r.wanted = true
	ch := make(chan subResult, 1)
	r.waiters = append(r.waiters, ch)
	if c.welcomed {
		r.resubscribeLocked(false)
	}
	c.mu.Unlock()
	select {
	case res := <-ch:
		return res.ev, res.err
	case <-ctx.Done():
		c.mu.Lock()
		for i, w := range r.waiters {
			if w == ch {
				r.waiters = append(r.waiters[:i], r.waiters[i+1:]...)
				break
			}
		}
		c.mu.Unlock()
		return Subscribed{}, ctx.Err()
	}
}

// Unsubscribe ends the subscription (a server-made one too); the message handler is removed.
func (r *Room) Unsubscribe(ctx context.Context) error {
	c := r.c
	c.mu.Lock()
	was := r.wanted || r.subscribed
	r.wanted, r.subscribed, r.inflight = false, false, false
	r.generation++
	r.onMessage = nil
	r.rejectLocked(newError(CodeClientClosed, fmt.Sprintf("unsubscribed from %q", r.name)))
	connected := c.welcomed
	c.mu.Unlock()
	if was && connected {
		if _, err := c.request(ctx, &arqonpb.Frame{Type: arqonpb.FrameType_FRAME_TYPE_UNSUBSCRIBE, Room: r.name}, nil); err != nil {
			return err
		}
	}
	if was {
		c.mu.Lock()
		if h := r.onUnsubscribed; h != nil {
			c.emitLocked(func() { h("client") })
		}
		c.mu.Unlock()
	}
	return nil
}

// Publish sends payload to the room: []byte as a binary payload, json.RawMessage as it is, anything else through
// json.Marshal. It returns the server's ack (Duplicate when the idempotency key was seen within the window).
func (r *Room) Publish(ctx context.Context, payload any, opts ...PublishOptions) (Ack, error) {
	if err := r.check(); err != nil {
		return Ack{}, err
	}
	f := &arqonpb.Frame{Type: arqonpb.FrameType_FRAME_TYPE_PUBLISH, Room: r.name}
	if b, ok := payload.([]byte); ok {
		f.Payload = b
		f.PayloadFormat = arqonpb.PayloadFormat_PAYLOAD_FORMAT_BINARY
	} else {
		b, err := jsonBytes(payload)
		if err != nil {
			return Ack{}, err
		}
		f.Payload = b
	}
	if len(opts) > 0 {
		o := opts[0]
		if len(o.Headers) > 0 {
			f.Headers = o.Headers
		}
		f.IdempotencyKey = o.IdempotencyKey
		f.Echo = o.Echo
	}
	ack, err := r.c.request(ctx, f, nil)
	if err != nil {
		return Ack{}, err
	}
	return Ack{ID: ack.Id, Offset: ack.Offset, Epoch: ack.Epoch, Duplicate: ack.Duplicate}, nil
}

// Members asks the server for the member list (and refreshes CurrentMembers).
func (r *Room) Members(ctx context.Context) ([]Member, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	reply, err := r.c.request(ctx, &arqonpb.Frame{Type: arqonpb.FrameType_FRAME_TYPE_PRESENCE_LIST, Room: r.name}, nil)
	if err != nil {
		return nil, err
	}
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	r.resetMembersLocked(reply.Members)
	return r.currentMembersLocked(), nil
}

// CurrentMembers is the member list as last seen (subscribe and presence events), without asking the server.
func (r *Room) CurrentMembers() []Member {
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	return r.currentMembersLocked()
}

// SetPresence replaces this connection's presence metadata in the room; it is kept and restored after reconnects.
func (r *Room) SetPresence(ctx context.Context, info any) error {
	if err := r.check(); err != nil {
		return err
	}
	b, err := jsonBytes(info)
	if err != nil {
		return err
	}
	r.set(func() { r.meta = b })
	_, err = r.c.request(ctx, &arqonpb.Frame{Type: arqonpb.FrameType_FRAME_TYPE_PRESENCE_SET, Room: r.name, Info: &arqonpb.Member{Info: b}}, nil)
	return err
}

// State reads the room's whole state map from the server (and refreshes CurrentState).
func (r *Room) State(ctx context.Context) (map[string]StateValue, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	reply, err := r.c.request(ctx, &arqonpb.Frame{Type: arqonpb.FrameType_FRAME_TYPE_STATE_GET, Room: r.name}, nil)
	if err != nil {
		return nil, err
	}
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	r.resetStateLocked(reply.State)
	return r.currentStateLocked(), nil
}

// CurrentState is the state map as last seen (subscribe, State and change events), without asking the server.
func (r *Room) CurrentState() map[string]StateValue {
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	return r.currentStateLocked()
}

// SetState writes key (value: any JSON value). With IfVersion the write is compare-and-set: a key at another version
// is refused with ARQ_STATE_CONFLICT (errors.Is(err, arqon.ErrStateConflict)). It returns the new entry.
func (r *Room) SetState(ctx context.Context, key string, value any, opts ...SetOptions) (StateValue, error) {
	if err := r.check(); err != nil {
		return StateValue{}, err
	}
	b, err := jsonBytes(value)
	if err != nil {
		return StateValue{}, err
	}
	entry := &arqonpb.StateEntry{Key: key, Value: b}
	if len(opts) > 0 && opts[0].IfVersion != nil {
		v := *opts[0].IfVersion
		entry.IfVersion = &v
	}
	reply, err := r.c.request(ctx, &arqonpb.Frame{Type: arqonpb.FrameType_FRAME_TYPE_STATE_SET, Room: r.name, State: []*arqonpb.StateEntry{entry}}, nil)
	if err != nil {
		return StateValue{}, err
	}
	for _, e := range reply.State {
		if e.Key == key {
			v := fromPBState(e)
			if len(v.Value) == 0 {
				v.Value = b
			}
			return v, nil
		}
	}
	return StateValue{Value: b}, nil
}

// DeleteState deletes key (compare-and-set with IfVersion as in SetState).
func (r *Room) DeleteState(ctx context.Context, key string, opts ...SetOptions) error {
	if err := r.check(); err != nil {
		return err
	}
	entry := &arqonpb.StateEntry{Key: key, Deleted: true}
	if len(opts) > 0 && opts[0].IfVersion != nil {
		v := *opts[0].IfVersion
		entry.IfVersion = &v
	}
	_, err := r.c.request(ctx, &arqonpb.Frame{Type: arqonpb.FrameType_FRAME_TYPE_STATE_SET, Room: r.name, State: []*arqonpb.StateEntry{entry}}, nil)
	return err
}

// History reads a page of the room's history (inclusive offsets; Reverse pages backwards).
func (r *Room) History(ctx context.Context, opts HistoryOptions) (HistoryPage, error) {
	if err := r.check(); err != nil {
		return HistoryPage{}, err
	}
	q := &arqonpb.HistoryQuery{FromOffset: opts.FromOffset, ToOffset: opts.ToOffset, Limit: opts.Limit, Reverse: opts.Reverse, FromTs: opts.FromTs, ToTs: opts.ToTs, TwistId: opts.TwistID}
	reply, err := r.c.request(ctx, &arqonpb.Frame{Type: arqonpb.FrameType_FRAME_TYPE_HISTORY, Room: r.name, History: q}, nil)
	if err != nil {
		return HistoryPage{}, err
	}
	p11 := r.c.Protocol() == "1.1"
	page := HistoryPage{Position: Position{Offset: reply.Offset, Epoch: reply.Epoch}, Messages: make([]Message, 0, len(reply.Messages))}
	for _, m := range reply.Messages {
		if p11 {
			m = ExpandMessage(m, reply.Epoch)
		}
		page.Messages = append(page.Messages, toMessage(m, r.name))
	}
	return page, nil
}

// Replay reads the room's history forward from offset from (inclusive) up to the room's position at the first page,
// a page (pageSize messages, 0 for the server's default) at a time. Iteration stops at the first error, which is
// yielded. It does not need a subscription.
func (r *Room) Replay(ctx context.Context, from uint64, pageSize uint32) iter.Seq2[Message, error] {
	return func(yield func(Message, error) bool) {
		next := max(from, 1)
		var end uint64
		for pages := 0; ; pages++ {
			page, err := r.History(ctx, HistoryOptions{FromOffset: next, Limit: pageSize})
			if err != nil {
				yield(Message{}, err)
				return
			}
			if pages == 0 {
				end = page.Position.Offset
			}
			progressed := false
			for _, m := range page.Messages {
				if m.Offset < next {
					continue
				}
				if m.Offset > end {
					return
				}
				progressed = true
				next = m.Offset + 1
				if !yield(m, nil) {
					return
				}
			}
			if !progressed || next > end {
				return
			}
		}
	}
}

// -----------------------------------------------------------------------------------------------------------------
// Internals (c.mu held)

func (r *Room) rejectLocked(err error) {
	for _, w := range r.waiters {
		w <- subResult{err: err}
	}
	r.waiters = nil
}

func (r *Room) closedLocked(err error) {
	r.subscribed = false
	r.rejectLocked(err)
}

func (r *Room) disconnectedLocked() {
	r.subscribed = false
	r.inflight = false
	r.generation++
}

func (r *Room) resubscribeLocked(afterReconnect bool) {
	if !r.wanted || r.inflight {
		return
	}
	r.subscribed = false
	f := &arqonpb.Frame{Type: arqonpb.FrameType_FRAME_TYPE_SUBSCRIBE, Room: r.name}
	if r.position != nil && r.glob == nil {
		f.Since = &arqonpb.Position{Offset: r.position.Offset, Epoch: r.position.Epoch}
	}
	if p := r.globSince; p != nil {
		f.Since = &arqonpb.Position{Offset: p.Offset, Epoch: p.Epoch}
		r.globSince = nil
	}
	if r.meta != nil {
		f.Info = &arqonpb.Member{Info: r.meta}
	}
	f.Delta = r.delta
	resubscribed := afterReconnect || r.everSubscribed
	r.inflight = true
	r.generation++
	generation := r.generation
	c := r.c
	// The reply is handled in the read loop before any later frame: messages that follow it must see its position.
	onReply := func(reply *arqonpb.Frame) {
		if reply.Type == arqonpb.FrameType_FRAME_TYPE_SUBSCRIBED {
			r.epoch = reply.Epoch
		}
		if generation != r.generation {
			return
		}
		r.inflight = false
		if !r.wanted {
			return
		}
		r.onSubscribedLocked(reply, resubscribed)
		// A wildcard subscription recovers per concrete room: the history after the last message it delivered of
		// each. Their live messages wait from now (the reply comes before any of them) until that is done.
		if r.glob != nil && resubscribed {
			for room, pos := range r.seen {
				h := &heldFrames{}
				r.held[room] = h
				go r.catchUp(room, pos, h)
			}
		}
		// Protocol 1.1 carries recovered messages in the reply; they are handled as if each came in its own frame.
		p11 := c.wireProtocol == "1.1"
		for _, m := range reply.Messages {
			if !r.wanted {
				return
			}
			if p11 {
				if m.Room == "" {
					m.Room = r.name
				}
				m = ExpandMessage(m, reply.Epoch)
			}
			r.onMessageLocked(m)
		}
	}
	// The request is sent now (in order with the frames already queued); its outcome is awaited elsewhere.
	c.seq++
	id := fmt.Sprint(c.seq)
	f.RequestId = id
	p := &pending{frame: f, onReply: onReply, ch: make(chan reply, 1)}
	c.pending[id] = p
	c.transmitLocked(p)
	timeout := c.opts.RequestTimeout
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		var res reply
		select {
		case res = <-p.ch:
		case <-ctx.Done():
			c.mu.Lock()
			delete(c.pending, id)
			c.mu.Unlock()
			res = reply{err: &Error{Code: CodeRequestTimeout, Message: "no reply to subscribe within " + timeout.String(), RequestID: id}}
		}
		if res.err == nil {
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if generation != r.generation {
			return
		}
		r.inflight = false
		// A subscribe lost to a disconnect is sent again on the next connection; anything else ends the subscription.
		if CodeOf(res.err) == CodeConnectionClosed {
			return
		}
		if CodeOf(res.err) == CodeClientClosed {
			r.rejectLocked(res.err)
			return
		}
		r.wanted = false
		r.onMessage = nil
		r.rejectLocked(res.err)
		if afterReconnect {
			if h := r.onError; h != nil {
				err := res.err
				c.emitLocked(func() { h(err) })
			}
			c.reportLocked(res.err)
		}
	}()
}

// globMessageLocked takes a (1.0-form) message of a room that this wildcard subscription's pattern matches.
func (r *Room) globMessageLocked(f *arqonpb.Frame) {
	if !(r.wanted || r.subscribed) {
		return
	}
	if h := r.held[f.Room]; h != nil {
		h.frames = append(h.frames, f)
		return
	}
	r.onMessageLocked(f)
}

// catchUp reads room's history after pos page by page, then lets the live messages held meanwhile through. It runs
// on its own goroutine (c.mu not held).
func (r *Room) catchUp(room string, pos Position, h *heldFrames) {
	c := r.c
	lost := false
	current := func() bool { return r.held[room] == h }
	from := pos.Offset + 1
	for pages := 0; pages < maxCatchUpPages; pages++ {
		c.mu.Lock()
		still, timeout := current(), c.opts.RequestTimeout
		c.mu.Unlock()
		if !still {
			return
		}
		if timeout <= 0 {
			timeout = 10 * time.Second
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		reply, err := c.request(ctx, &arqonpb.Frame{Type: arqonpb.FrameType_FRAME_TYPE_HISTORY, Room: room, History: &arqonpb.HistoryQuery{FromOffset: from}}, nil)
		cancel()
		if err != nil {
			switch CodeOf(err) {
			case CodeConnectionClosed, CodeClientClosed:
				// Disconnected again: the next renewal catches up from what was delivered; what was held came on the
				// dead connection and is read again then (delivering it now could skip a gap).
				lost = true
			default:
				// Refused (no history for this token, ...) or timed out: the live messages go on.
				c.mu.Lock()
				if hd := r.onError; hd != nil {
					c.emitLocked(func() { hd(err) })
				}
				c.reportLocked(err)
				c.mu.Unlock()
			}
			break
		}
		if reply.Epoch != pos.Epoch {
			break // another epoch: the room's history was lost, there is nothing to recover from
		}
		c.mu.Lock()
		if !current() {
			c.mu.Unlock()
			return // a later renewal took over
		}
		p11 := c.wireProtocol == "1.1"
		for _, m := range reply.Messages {
			m.Room = room
			if p11 {
				m = ExpandMessage(m, reply.Epoch)
			}
			r.onMessageLocked(m)
		}
		c.mu.Unlock()
		var last uint64
		if n := len(reply.Messages); n > 0 {
			last = reply.Messages[n-1].Offset
		}
		if last == 0 || last >= reply.Offset || last < from {
			break
		}
		from = last + 1
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !current() {
		return
	}
	delete(r.held, room)
	if lost {
		return
	}
	for _, f := range h.frames {
		r.onMessageLocked(f)
	}
}

func (r *Room) handleLocked(f *arqonpb.Frame) {
	c := r.c
	switch f.Type {
	case arqonpb.FrameType_FRAME_TYPE_MESSAGE:
		// The server counts an epoch as told once it wrote it, whether or not this room still wants messages.
		if f.Epoch != "" {
			r.epoch = f.Epoch
		}
		if r.wanted || r.subscribed {
			if c.wireProtocol == "1.1" {
				f = ExpandMessage(f, r.epoch)
			}
			r.onMessageLocked(f)
		}
	case arqonpb.FrameType_FRAME_TYPE_PRESENCE_JOIN:
		r.applyPresenceLocked(f.Members, nil, "")
	case arqonpb.FrameType_FRAME_TYPE_PRESENCE_LEAVE:
		r.applyPresenceLocked(nil, f.Members, f.Reason)
	case arqonpb.FrameType_FRAME_TYPE_PRESENCE_DIFF:
		r.applyPresenceLocked(f.Joined, f.Left, "")
	case arqonpb.FrameType_FRAME_TYPE_STATE_CHANGED:
		r.stateChangedLocked(f.State)
	case arqonpb.FrameType_FRAME_TYPE_UNSUBSCRIBED:
		if !(r.wanted || r.subscribed) {
			return
		}
		r.wanted, r.subscribed = false, false
		r.rejectLocked(newError(CodeClientClosed, "the server ended the subscription: "+f.Reason))
		if h := r.onUnsubscribed; h != nil {
			reason := f.Reason
			c.emitLocked(func() { h(reason) })
		}
	case arqonpb.FrameType_FRAME_TYPE_SUBSCRIBED:
		// Not a reply: the server API subscribed this connection (not wanted, so not renewed after a reconnect).
		r.epoch = f.Epoch
		r.onSubscribedLocked(f, false)
	}
}

func (r *Room) onSubscribedLocked(reply *arqonpb.Frame, resubscribed bool) {
	pos := Position{Offset: reply.Offset, Epoch: reply.Epoch}
	r.epoch = reply.Epoch
	// When recovery succeeded the missed messages follow: the position advances through them, not to the room's
	// head. Otherwise (fresh subscribe, or recovery impossible) start from the room's head. A pattern has none.
	mine := r.position
	keep := r.glob != nil || mine != nil && mine.Epoch == pos.Epoch && ((reply.Recovered != nil && *reply.Recovered) || (reply.Recovered == nil && mine.Offset > pos.Offset))
	if !keep {
		p := pos
		r.position = &p
	}
	// The server restarts every delta subscription with a full payload.
	r.hasBase, r.base, r.deltaBroken = false, nil, false
	r.subscribed = true
	r.everSubscribed = true
	r.resetMembersLocked(reply.Members)
	r.resetStateLocked(reply.State)
	ev := Subscribed{Room: r.name, Position: pos, Reason: reply.Reason, Resubscribed: resubscribed, Members: r.currentMembersLocked(), State: r.currentStateLocked()}
	if reply.Recovered != nil {
		v := *reply.Recovered
		ev.Recovered = &v
	}
	for _, w := range r.waiters {
		w <- subResult{ev: ev}
	}
	r.waiters = nil
	if h := r.onSubscribed; h != nil {
		r.c.emitLocked(func() { h(ev) })
	}
}

func (r *Room) onMessageLocked(f *arqonpb.Frame) {
	if r.deltaBroken {
		return
	}
	if r.glob != nil {
		r.onGlobMessageLocked(f)
		return
	}
	mine := r.position
	// A message at or before the last seen position of the same epoch was already delivered: drop it.
	if f.Offset > 0 && mine != nil && mine.Epoch == f.Epoch && f.Offset <= mine.Offset {
		return
	}
	if r.delta || f.Delta {
		if !f.Delta {
			r.base, r.baseBinary, r.hasBase = f.Payload, f.PayloadFormat == arqonpb.PayloadFormat_PAYLOAD_FORMAT_BINARY, true
		} else {
			var full []byte
			err := fmt.Errorf("no previous payload")
			if r.hasBase {
				full, err = applyDelta(r.base, f.Payload, maxDeltaOutput)
			}
			if err != nil {
				// Every later delta would build on the missing payload: renew the subscription from the last good
				// position instead; the server replays from there and starts again with a full payload.
				r.deltaBroken = true
				e := &Error{Code: CodeDeltaInvalid, Message: fmt.Sprintf("message %s in %q: %v", f.Id, r.name, err), Cause: err}
				if h := r.onError; h != nil {
					r.c.emitLocked(func() { h(e) })
				}
				r.c.reportLocked(e)
				if r.c.welcomed {
					r.inflight = false
					r.resubscribeLocked(false)
				}
				return
			}
			r.deltasApplied++
			r.base = full
			out := proto.Clone(f).(*arqonpb.Frame)
			out.Payload, out.Delta = full, false
			out.PayloadFormat = arqonpb.PayloadFormat_PAYLOAD_FORMAT_JSON
			if r.baseBinary {
				out.PayloadFormat = arqonpb.PayloadFormat_PAYLOAD_FORMAT_BINARY
			}
			f = out
		}
	}
	if f.PayloadFormat != arqonpb.PayloadFormat_PAYLOAD_FORMAT_BINARY && len(f.Payload) > 0 && !json.Valid(f.Payload) {
		r.c.reportLocked(newError(CodeFrameMalformed, fmt.Sprintf("message %s has a payload that is not JSON", f.Id)))
		return
	}
	if f.Offset > 0 {
		r.position = &Position{Offset: f.Offset, Epoch: f.Epoch}
	}
	if h := r.onMessage; h != nil {
		m := toMessage(f, r.name)
		r.c.emitLocked(func() { h(m) })
	}
}

// onGlobMessageLocked delivers a wildcard subscription's message: duplicates dropped per concrete room, that room's
// position moved.
func (r *Room) onGlobMessageLocked(f *arqonpb.Frame) {
	if seen, ok := r.seen[f.Room]; ok && f.Offset > 0 && seen.Epoch == f.Epoch && f.Offset <= seen.Offset {
		return // already delivered
	}
	if f.PayloadFormat != arqonpb.PayloadFormat_PAYLOAD_FORMAT_BINARY && len(f.Payload) > 0 && !json.Valid(f.Payload) {
		r.c.reportLocked(newError(CodeFrameMalformed, fmt.Sprintf("message %s has a payload that is not JSON", f.Id)))
		return
	}
	if f.Offset > 0 {
		r.seen[f.Room] = Position{Offset: f.Offset, Epoch: f.Epoch}
	}
	if h := r.onMessage; h != nil {
		m := toMessage(f, r.name)
		r.c.emitLocked(func() { h(m) })
	}
}

func (r *Room) currentMembersLocked() []Member {
	out := make([]Member, 0, len(r.members))
	for _, m := range r.members {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ClientID < out[j].ClientID })
	return out
}

func (r *Room) currentStateLocked() map[string]StateValue {
	out := make(map[string]StateValue, len(r.state))
	for k, v := range r.state {
		out[k] = v
	}
	return out
}

func (r *Room) resetMembersLocked(members []*arqonpb.Member) {
	r.members = map[string]Member{}
	for _, m := range members {
		r.members[m.ClientId] = fromPBMember(m)
	}
	if h := r.onPresenceChange; h != nil {
		list := r.currentMembersLocked()
		r.c.emitLocked(func() { h(list) })
	}
}

func (r *Room) applyPresenceLocked(joined, left []*arqonpb.Member, reason string) {
	var joins, leaves []Member
	for _, m := range left {
		member := fromPBMember(m)
		if known, ok := r.members[member.ClientID]; ok {
			if member.Info == nil {
				member.Info = known.Info
			}
			if member.UserID == "" {
				member.UserID = known.UserID
			}
		}
		delete(r.members, member.ClientID)
		member.Reason = reason
		leaves = append(leaves, member)
	}
	for _, m := range joined {
		member := fromPBMember(m)
		r.members[member.ClientID] = member
		joins = append(joins, member)
	}
	c := r.c
	if h := r.onLeave; h != nil {
		for _, m := range leaves {
			c.emitLocked(func() { h(m) })
		}
	}
	if h := r.onJoin; h != nil {
		for _, m := range joins {
			c.emitLocked(func() { h(m) })
		}
	}
	if h := r.onPresenceChange; h != nil && len(joins)+len(leaves) > 0 {
		list := r.currentMembersLocked()
		c.emitLocked(func() { h(list) })
	}
}

func (r *Room) resetStateLocked(entries []*arqonpb.StateEntry) {
	r.state = map[string]StateValue{}
	for _, e := range entries {
		if !e.Deleted {
			r.state[e.Key] = fromPBState(e)
		}
	}
}

func (r *Room) stateChangedLocked(entries []*arqonpb.StateEntry) {
	var changes []StateChange
	for _, e := range entries {
		if e.Deleted {
			delete(r.state, e.Key)
			changes = append(changes, StateChange{Key: e.Key, Deleted: true, StateValue: StateValue{Version: e.Version, UpdatedAt: e.UpdatedAt, UpdatedBy: e.UpdatedBy}})
			continue
		}
		v := fromPBState(e)
		r.state[e.Key] = v
		changes = append(changes, StateChange{Key: e.Key, StateValue: v})
	}
	if h := r.onStateChange; h != nil && len(changes) > 0 {
		r.c.emitLocked(func() { h(changes) })
	}
}
