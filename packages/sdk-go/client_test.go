package arqon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

var codecs = []struct {
	name     string
	codec    Codec
	protocol string
}{
	{"json-1.1", JSONCodec, "1.1"},
	{"protobuf-1.1", ProtobufCodec, "1.1"},
	{"json-1.0", JSONCodec, "1.0"},
	{"protobuf-1.0", ProtobufCodec, "1.0"},
}

func TestPublishSubscribe(t *testing.T) {
	for _, cc := range codecs {
		t.Run(cc.name, func(t *testing.T) {
			ctx := testCtx(t, 30*time.Second)
			var connected collector[Connected]
			alice := newClient(t, shared.url, Options{Token: shared.token("alice"), Codec: cc.codec, Protocol: cc.protocol, OnConnected: connected.add})
			bob := newClient(t, shared.url, Options{Token: shared.token("bob"), Codec: cc.codec, Protocol: cc.protocol})
			eventually(t, 5*time.Second, "connected event", func() bool { return connected.len() == 1 })
			if ev := connected.all()[0]; ev.Protocol != cc.protocol || ev.ClientID == "" || ev.Reconnected || ev.Limits.MaxFrameBytes == 0 {
				t.Fatalf("connected event: %+v", ev)
			}
			if alice.Protocol() != cc.protocol || alice.ClientID() == "" {
				t.Fatalf("protocol %q client id %q", alice.Protocol(), alice.ClientID())
			}
			name := roomName(t)
			var got collector[Message]
			sub, err := alice.Room(name).Subscribe(ctx, got.add)
			if err != nil {
				t.Fatal(err)
			}
			if sub.Room != name || sub.Recovered != nil || sub.Resubscribed || sub.Position.Offset != 0 {
				t.Fatalf("subscribed: %+v", sub)
			}
			ack, err := bob.Room(name).Publish(ctx, map[string]any{"text": "héllo ✓"}, PublishOptions{Headers: map[string]string{"trace": "t-1"}})
			if err != nil {
				t.Fatal(err)
			}
			if ack.Offset != 1 || ack.Epoch == "" || ack.ID == "" || ack.Duplicate {
				t.Fatalf("ack: %+v", ack)
			}
			bin, err := bob.Room(name).Publish(ctx, []byte{0, 1, 2, 255})
			if err != nil || bin.Offset != 2 {
				t.Fatalf("binary publish: %+v %v", bin, err)
			}
			eventually(t, 5*time.Second, "two messages", func() bool { return got.len() == 2 })
			msgs := got.all()
			var payload struct{ Text string }
			if err := msgs[0].Decode(&payload); err != nil || payload.Text != "héllo ✓" {
				t.Fatalf("payload %s: %v", msgs[0].Payload, err)
			}
			m := msgs[0]
			if m.Sender != "bob" || m.Offset != 1 || m.Epoch != ack.Epoch || m.ID != ack.ID || m.Room != name ||
				m.Headers["trace"] != "t-1" || m.Headers["x-twist-id"] != "main" || m.Headers["x-timestamp"] != fmt.Sprint(m.Timestamp) || m.Timestamp == 0 {
				t.Fatalf("message: %+v", m)
			}
			if !msgs[1].Binary || string(msgs[1].Payload) != string([]byte{0, 1, 2, 255}) || msgs[1].Epoch != ack.Epoch {
				t.Fatalf("binary message: %+v", msgs[1])
			}
			if p := alice.Room(name).Position(); p == nil || p.Offset != 2 || p.Epoch != ack.Epoch {
				t.Fatalf("position %+v", p)
			}
			// echo delivers to the publisher too
			var mine collector[Message]
			if _, err := bob.Room(name).Subscribe(ctx, mine.add); err != nil {
				t.Fatal(err)
			}
			if _, err := bob.Room(name).Publish(ctx, "echoed", PublishOptions{Echo: true}); err != nil {
				t.Fatal(err)
			}
			eventually(t, 5*time.Second, "echo", func() bool { return mine.len() == 1 && got.len() == 3 })
			if string(mine.all()[0].Payload) != `"echoed"` {
				t.Fatalf("echo payload %s", mine.all()[0].Payload)
			}
			// after unsubscribe nothing more arrives
			var unsub collector[string]
			alice.Room(name).OnUnsubscribed(unsub.add)
			if err := alice.Room(name).Unsubscribe(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := bob.Room(name).Publish(ctx, "after", PublishOptions{Echo: true}); err != nil {
				t.Fatal(err)
			}
			eventually(t, 5*time.Second, "bob's echo", func() bool { return mine.len() == 2 })
			if _, err := alice.Ping(ctx); err != nil { // a round trip after which the message would have arrived
				t.Fatal(err)
			}
			if got.len() != 3 || alice.Room(name).Subscribed() {
				t.Fatalf("alice got %d messages after unsubscribing", got.len())
			}
			eventually(t, 5*time.Second, "unsubscribed event", func() bool { return unsub.len() == 1 && unsub.all()[0] == "client" })
		})
	}
}

func TestIdempotencyKey(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	c := newClient(t, shared.url, Options{Token: shared.token("alice")})
	room := c.Room(roomName(t))
	first, err := room.Publish(ctx, map[string]int{"n": 1}, PublishOptions{IdempotencyKey: "order-17"})
	if err != nil {
		t.Fatal(err)
	}
	again, err := room.Publish(ctx, map[string]int{"n": 1}, PublishOptions{IdempotencyKey: "order-17"})
	if err != nil {
		t.Fatal(err)
	}
	if first.Duplicate || !again.Duplicate || again.Offset != first.Offset || again.ID != first.ID {
		t.Fatalf("first %+v again %+v", first, again)
	}
	page, err := room.History(ctx, HistoryOptions{FromOffset: 1})
	if err != nil || len(page.Messages) != 1 {
		t.Fatalf("history after a duplicate: %+v %v", page, err)
	}
}

func TestPresence(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	name := roomName(t)
	alice := newClient(t, shared.url, Options{Token: shared.token("alice")})
	bob := newClient(t, shared.url, Options{Token: shared.token("bob"), Codec: ProtobufCodec})
	var joins, leaves collector[Member]
	room := alice.Room(name)
	room.OnJoin(joins.add)
	room.OnLeave(leaves.add)
	sub, err := room.Subscribe(ctx, nil, SubscribeOptions{Meta: map[string]string{"name": "Alice"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(sub.Members) != 1 || sub.Members[0].UserID != "alice" || string(sub.Members[0].Info) != `{"name":"Alice"}` {
		t.Fatalf("members at subscribe: %+v", sub.Members)
	}
	if _, err := bob.Room(name).Subscribe(ctx, nil, SubscribeOptions{Meta: map[string]string{"name": "Bob"}}); err != nil {
		t.Fatal(err)
	}
	bobJoin := func() (Member, bool) {
		for _, j := range joins.all() {
			if j.UserID == "bob" {
				return j, true
			}
		}
		return Member{}, false
	}
	eventually(t, 5*time.Second, "bob's join", func() bool { _, ok := bobJoin(); return ok })
	if j, _ := bobJoin(); j.UserID != "bob" || j.ClientID != bob.ClientID() || string(j.Info) != `{"name":"Bob"}` {
		t.Fatalf("join %+v", j)
	}
	members, err := room.Members(ctx)
	if err != nil || len(members) != 2 {
		t.Fatalf("members %+v %v", members, err)
	}
	if err := bob.Room(name).SetPresence(ctx, map[string]string{"status": "away"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "bob's new presence", func() bool {
		ms, err := room.Members(ctx)
		for _, m := range ms {
			if m.UserID == "bob" && string(m.Info) == `{"status":"away"}` {
				return true
			}
		}
		return err != nil
	})
	if err := bob.Room(name).Unsubscribe(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "bob's leave", func() bool { return leaves.len() == 1 })
	if l := leaves.all()[0]; l.UserID != "bob" {
		t.Fatalf("leave %+v", l)
	}
	if cur := room.CurrentMembers(); len(cur) != 1 || cur[0].UserID != "alice" {
		t.Fatalf("current members %+v", cur)
	}
}

func TestStateCompareAndSet(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	name := roomName(t)
	alice := newClient(t, shared.url, Options{Token: shared.token("alice")})
	bob := newClient(t, shared.url, Options{Token: shared.token("bob")})
	var changes collector[StateChange]
	bob.Room(name).OnStateChange(func(cs []StateChange) {
		for _, c := range cs {
			changes.add(c)
		}
	})
	if _, err := bob.Room(name).Subscribe(ctx, nil); err != nil {
		t.Fatal(err)
	}
	room := alice.Room(name)
	created, err := room.SetState(ctx, "mode", "lobby", IfVersion(0))
	if err != nil || created.Version != 1 {
		t.Fatalf("create: %+v %v", created, err)
	}
	_, err = room.SetState(ctx, "mode", "quiz", IfVersion(0))
	if !errors.Is(err, ErrStateConflict) {
		t.Fatalf("create over an existing key: %v", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.RequestID == "" || e.Retryable() {
		t.Fatalf("typed error: %#v", err)
	}
	updated, err := room.SetState(ctx, "mode", "quiz", IfVersion(1))
	if err != nil || updated.Version != 2 || string(updated.Value) != `"quiz"` {
		t.Fatalf("update: %+v %v", updated, err)
	}
	if _, err := room.SetState(ctx, "mode", "stale", IfVersion(1)); CodeOf(err) != CodeStateConflict {
		t.Fatalf("stale version: %v", err)
	}
	if _, err := room.SetState(ctx, "count", 7); err != nil {
		t.Fatal(err)
	}
	state, err := room.State(ctx)
	if err != nil || len(state) != 2 || string(state["mode"].Value) != `"quiz"` || state["mode"].Version != 2 || string(state["count"].Value) != "7" {
		t.Fatalf("state %+v %v", state, err)
	}
	if err := room.DeleteState(ctx, "count", IfVersion(1)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "four changes seen by bob", func() bool { return changes.len() == 4 })
	cs := changes.all()
	if cs[0].Key != "mode" || cs[0].Version != 1 || cs[1].Version != 2 || cs[2].Key != "count" || !cs[3].Deleted {
		t.Fatalf("changes %+v", cs)
	}
	if cur := bob.Room(name).CurrentState(); len(cur) != 1 || cur["mode"].Version != 2 || cur["mode"].UpdatedBy != "alice" {
		t.Fatalf("bob's current state %+v", cur)
	}
	if _, err := room.SetState(ctx, "bad key!", 1); CodeOf(err) != CodeStateKeyInvalid {
		t.Fatalf("bad key: %v", err)
	}
}

func TestHistoryAndReplay(t *testing.T) {
	for _, cc := range codecs[:2] {
		t.Run(cc.name, func(t *testing.T) {
			ctx := testCtx(t, 30*time.Second)
			c := newClient(t, shared.url, Options{Token: shared.token("alice"), Codec: cc.codec, Protocol: cc.protocol})
			room := c.Room(roomName(t))
			for i := 1; i <= 25; i++ {
				if _, err := room.Publish(ctx, map[string]int{"n": i}); err != nil {
					t.Fatal(err)
				}
			}
			page, err := room.History(ctx, HistoryOptions{FromOffset: 3, Limit: 5})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Messages) != 5 || page.Messages[0].Offset != 3 || page.Position.Offset != 25 || page.Position.Epoch == "" ||
				page.Messages[0].Epoch != page.Position.Epoch || page.Messages[0].Headers["x-twist-id"] != "main" {
				t.Fatalf("page %+v", page)
			}
			back, err := room.History(ctx, HistoryOptions{Reverse: true, Limit: 2})
			if err != nil || len(back.Messages) != 2 || back.Messages[0].Offset != 25 {
				t.Fatalf("reverse page %+v %v", back, err)
			}
			var offsets []uint64
			for m, err := range room.Replay(ctx, 1, 7) {
				if err != nil {
					t.Fatal(err)
				}
				var p struct{ N int }
				if err := m.Decode(&p); err != nil || uint64(p.N) != m.Offset {
					t.Fatalf("replayed %+v", m)
				}
				offsets = append(offsets, m.Offset)
			}
			if len(offsets) != 25 || offsets[0] != 1 || offsets[24] != 25 {
				t.Fatalf("replayed offsets %v", offsets)
			}
			n := 0
			for range room.Replay(ctx, 20, 0) {
				n++
				if n == 3 {
					break
				}
			}
			if n != 3 {
				t.Fatalf("breaking out of Replay: %d", n)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	// a token the server refuses: 401 at the upgrade is terminal (4500)
	bad, err := New(shared.url, Options{Token: mintToken("another-secret-of-at-least-32-characters", "eve", "acme", time.Hour, nil)})
	if err != nil {
		t.Fatal(err)
	}
	err = bad.Connect(ctx)
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeClientClosed || e.Detail["code"] != CloseAuthInvalid {
		t.Fatalf("bad token: %#v", err)
	}
	if st := bad.Status(); st.Kind != StatusClosed || st.Code != CloseAuthInvalid {
		t.Fatalf("status %+v", st)
	}
	if _, err := bad.Room("x").Publish(ctx, 1); !errors.Is(err, ErrClientClosed) {
		t.Fatalf("publish on a closed client: %v", err)
	}
	_ = bad.Close(ctx)
	if _, err := New(shared.url, Options{}); CodeOf(err) != CodeAuthMissing {
		t.Fatalf("no token: %v", err)
	}
	if _, err := New(shared.url, Options{Token: "x", Protocol: "2.0"}); CodeOf(err) != CodeProtocolUnsupported {
		t.Fatalf("protocol 2.0: %v", err)
	}

	c := newClient(t, shared.url, Options{Token: shared.token("alice")})
	if _, err := c.Room("bad room name").Publish(ctx, 1); CodeOf(err) != CodeRoomInvalid {
		t.Fatalf("invalid room: %v", err)
	}
	if _, err := c.Command(ctx, "op.nothing.here", nil); CodeOf(err) != CodeCommandNotFound {
		t.Fatalf("unknown command: %v", err)
	}
	if _, err := c.RPC(ctx, "profile.get", map[string]int{"id": 7}); CodeOf(err) != CodeFeatureDisabled {
		t.Fatalf("rpc without a hook: %v", err)
	}
	if err := c.Room(roomName(t)).SetPresence(ctx, map[string]string{"s": "x"}); CodeOf(err) != CodeNotSubscribed {
		t.Fatalf("presence_set without a subscription: %v", err)
	}
	if _, err := c.Room(roomName(t)).Publish(ctx, 1, PublishOptions{Headers: map[string]string{"x-twist-id": "bad id!"}}); CodeOf(err) != CodeHeaderInvalid {
		t.Fatalf("invalid header: %v", err)
	}
	if _, err := c.Room(roomName(t)).Publish(ctx, json.RawMessage(`{bad`)); CodeOf(err) != CodeFrameWrongType {
		t.Fatalf("invalid raw JSON: %v", err)
	}
	// a context that ends first wins
	short, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Ping(short); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v", err)
	}
	// a request timeout is ARQ_REQUEST_TIMEOUT and retryable
	slow := newClient(t, shared.url, Options{Token: shared.token("alice"), RequestTimeout: time.Nanosecond})
	_, err = slow.Ping(ctx)
	if !errors.Is(err, ErrRequestTimeout) || !err.(*Error).Retryable() {
		t.Fatalf("timeout: %v", err)
	}
}

func TestCommand(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	c := newClient(t, shared.url, Options{Token: shared.token("alice")})
	name := roomName(t)
	if _, err := c.Room(name).Publish(ctx, "one"); err != nil {
		t.Fatal(err)
	}
	res, err := c.Command(ctx, "op.history.get", map[string]any{"room": name, "limit": 10})
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(res) || len(res) < 10 {
		t.Fatalf("op.history.get answered %s", res)
	}
}

func TestConcurrentUse(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	c := newClient(t, shared.url, Options{Token: shared.token("alice")})
	name := roomName(t)
	var got collector[Message]
	listener := newClient(t, shared.url, Options{Token: shared.token("bob")})
	if _, err := listener.Room(name).Subscribe(ctx, got.add); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				if _, err := c.Room(name).Publish(ctx, map[string]int{"g": g, "i": i}); err != nil {
					errs <- err
					return
				}
				_ = c.Room(name).Position()
				_ = c.Status()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "160 messages", func() bool { return got.len() == 160 })
	for i, m := range got.all() {
		if m.Offset != uint64(i+1) {
			t.Fatalf("message %d has offset %d", i, m.Offset)
		}
	}
}

// Subscribe before Connect, and two Connects at once: both wait for the same welcome.
func TestSubscribeBeforeConnectAndConcurrentConnects(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	c, err := New(shared.url, Options{Token: shared.token("early")})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close(ctx) }()
	name := roomName(t)
	var got collector[Message]
	subscribed := make(chan error, 1)
	go func() {
		_, err := c.Room(name).Subscribe(ctx, got.add)
		subscribed <- err
	}()
	errs := make(chan error, 2)
	for i := 0; i < 2; i++ {
		go func() { errs <- c.Connect(ctx) }()
	}
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if err := <-subscribed; err != nil {
		t.Fatal(err)
	}
	if _, err := c.Room(name).Publish(ctx, "mine", PublishOptions{Echo: true}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the echo", func() bool { return got.len() == 1 })
}

// Reconnect attempts are bounded by MaxAttempts: then the client closes and Connect says why.
func TestReconnectGivesUp(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	relay := startProxy(t, shared.port)
	relay.refuse.Store(true)
	var statuses collector[Status]
	c, err := New(relay.url(), Options{Token: shared.token("gives-up"), OnStatus: statuses.add,
		Reconnect: ReconnectOptions{InitialDelay: 10 * time.Millisecond, MaxDelay: 20 * time.Millisecond, MaxAttempts: 3}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close(ctx) }()
	err = c.Connect(ctx)
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeClientClosed || e.Detail["code"] != CloseAbnormal || !strings.Contains(e.Message, "gave up after 3 attempts") {
		t.Fatalf("connect: %#v", err)
	}
	eventually(t, 5*time.Second, "the closed status", func() bool {
		all := statuses.all()
		return len(all) > 0 && all[len(all)-1].Kind == StatusClosed
	})
	reconnects := 0
	for _, s := range statuses.all() {
		if s.Kind == StatusReconnecting {
			reconnects++
			if s.Delay < 0 || s.Delay >= 20*time.Millisecond {
				t.Fatalf("delay %s", s.Delay)
			}
		}
	}
	if reconnects != 3 {
		t.Fatalf("%d reconnect attempts", reconnects)
	}
	// the same client connects once the gateway is back
	relay.refuse.Store(false)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
}
