package arqon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// The recovery suite: the subscriber's socket is killed (a TCP relay severs it, no close frame) several times during a
// sequenced stream; after the stream every message arrived exactly once, in order.
func TestRecoveryKillSocketDuringStream(t *testing.T) {
	const total = 300
	for _, cc := range codecs {
		t.Run(cc.name, func(t *testing.T) {
			ctx := testCtx(t, 60*time.Second)
			name := roomName(t)
			relay := startProxy(t, shared.port)
			var statuses collector[Status]
			var subs collector[Subscribed]
			sub := newClient(t, relay.url(), Options{Token: shared.token("reader"), Codec: cc.codec, Protocol: cc.protocol, OnStatus: statuses.add})
			var got collector[Message]
			room := sub.Room(name)
			room.OnSubscribed(subs.add)
			if _, err := room.Subscribe(ctx, got.add); err != nil {
				t.Fatal(err)
			}
			pub := newClient(t, shared.url, Options{Token: shared.token("writer")})
			kills, due := 0, false
			for i := 1; i <= total; i++ {
				publishPaced(t, ctx, pub.Room(name), map[string]int{"seq": i})
				// Every 60 messages a kill is due; it hits once the renewal after the previous one has landed.
				if i%60 == 30 {
					due = true
				}
				if due && room.Subscribed() && relay.sever() > 0 {
					kills++
					due = false
				}
			}
			eventually(t, 30*time.Second, fmt.Sprintf("%d messages (have %d)", total, got.len()), func() bool { return got.len() >= total })
			// One more round trip on the reader's connection: anything duplicated would have arrived by now.
			if _, err := sub.Ping(ctx); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
			msgs := got.all()
			if len(msgs) != total {
				t.Fatalf("%d messages for %d published (duplicates)", len(msgs), total)
			}
			for i, m := range msgs {
				var p struct{ Seq int }
				if err := m.Decode(&p); err != nil || p.Seq != i+1 || m.Offset != uint64(i+1) {
					t.Fatalf("message %d: seq %d offset %d (%v)", i, p.Seq, m.Offset, err)
				}
			}
			if kills < 3 {
				t.Fatalf("only %d kills hit a live socket", kills)
			}
			if relay.accepted.Load() < int64(kills+1) {
				t.Fatalf("%d connections for %d kills", relay.accepted.Load(), kills)
			}
			renewals := 0
			for _, s := range subs.all() {
				if s.Resubscribed {
					renewals++
					if s.Recovered == nil || !*s.Recovered {
						t.Fatalf("renewal not recovered: %+v", s)
					}
				}
			}
			if renewals < kills {
				t.Fatalf("%d renewals for %d kills", renewals, kills)
			}
			lost := 0
			for _, s := range statuses.all() {
				if s.Kind == StatusDisconnected {
					lost++
					if s.Code != CloseAbnormal || !s.WillReconnect {
						t.Fatalf("disconnected status %+v", s)
					}
				}
			}
			if lost < kills {
				t.Fatalf("%d disconnects for %d kills", lost, kills)
			}
		})
	}
}

// publishPaced publishes, waiting out the server's publish rate limit (ARQ_RATE_LIMITED is retryable) a bounded
// number of times.
func publishPaced(t *testing.T, ctx context.Context, room *Room, payload any) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		_, err := room.Publish(ctx, payload)
		if err == nil {
			return
		}
		var e *Error
		if !errors.As(err, &e) || e.Code != CodeRateLimited || !e.Retryable() || attempt == 100 {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Recovery across a reconnect that can not recover (the server restarted with an in-memory store: a new epoch):
// the renewal says recovered=false with epoch_mismatch, and the position starts over from the new epoch.
func TestRecoveredFalseAfterServerRestart(t *testing.T) {
	ctx := testCtx(t, 90*time.Second)
	g, err := startGateway(0, "s-"+randomHex(20), "op-"+randomHex(16))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { g.stop() }()
	var subs collector[Subscribed]
	var statuses collector[Status]
	c := newClient(t, g.url, Options{Token: g.token("alice"), OnStatus: statuses.add})
	room := c.Room("restart")
	room.OnSubscribed(subs.add)
	var got collector[Message]
	if _, err := room.Subscribe(ctx, got.add); err != nil {
		t.Fatal(err)
	}
	pub := newClient(t, g.url, Options{Token: g.token("bob"), Reconnect: ReconnectOptions{Disabled: true}})
	for i := 0; i < 3; i++ {
		if _, err := pub.Room("restart").Publish(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, "three messages", func() bool { return got.len() == 3 })
	before := room.Position()
	port := g.port
	g.stop()
	g, err = startGateway(port, g.secret, g.operatorKey)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the renewal", func() bool { return subs.len() == 2 })
	renewal := subs.all()[1]
	if !renewal.Resubscribed || renewal.Recovered == nil || *renewal.Recovered || renewal.Reason != "epoch_mismatch" {
		t.Fatalf("renewal %+v", renewal)
	}
	if after := room.Position(); after == nil || after.Epoch == before.Epoch || after.Epoch != renewal.Position.Epoch {
		t.Fatalf("position %+v before %+v", after, before)
	}
	var gone *Status
	for _, s := range statuses.all() {
		if s.Kind == StatusDisconnected {
			gone = &s
			break
		}
	}
	if gone == nil || gone.Code != CloseGoingAway || !gone.WillReconnect {
		t.Fatalf("the restart was not seen as 1001: %+v", gone)
	}
	// the publisher (reconnect disabled) is closed for good
	eventually(t, 10*time.Second, "publisher closed", func() bool { return pub.Status().Kind == StatusClosed })
}

// Recovery asked explicitly with a position of another epoch surfaces recovered=false.
func TestSubscribeSinceUnknownEpoch(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	c := newClient(t, shared.url, Options{Token: shared.token("alice")})
	name := roomName(t)
	if _, err := c.Room(name).Publish(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	sub, err := c.Room(name).Subscribe(ctx, nil, SubscribeOptions{Since: &Position{Offset: 1, Epoch: "not-the-epoch"}})
	if err != nil {
		t.Fatal(err)
	}
	if sub.Recovered == nil || *sub.Recovered || sub.Reason != "epoch_mismatch" || sub.Position.Offset != 1 {
		t.Fatalf("subscribed %+v", sub)
	}
	// and a known one recovers what came after it
	epoch := sub.Position.Epoch
	if _, err := c.Room(name).Publish(ctx, "y"); err != nil {
		t.Fatal(err)
	}
	other := newClient(t, shared.url, Options{Token: shared.token("bob"), Codec: ProtobufCodec})
	var got collector[Message]
	again, err := other.Room(name).Subscribe(ctx, got.add, SubscribeOptions{Since: &Position{Offset: 0, Epoch: epoch}})
	if err != nil {
		t.Fatal(err)
	}
	if again.Recovered == nil || !*again.Recovered {
		t.Fatalf("subscribed %+v", again)
	}
	eventually(t, 5*time.Second, "two recovered messages", func() bool { return got.len() == 2 })
	if m := got.all(); string(m[0].Payload) != `"x"` || string(m[1].Payload) != `"y"` {
		t.Fatalf("recovered %s %s", m[0].Payload, m[1].Payload)
	}
}

// apiPost calls the server API with the operator key.
func apiPost(t *testing.T, g *gateway, path, body string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, g.httpURL+path, strings.NewReader(body))
	req.Header.Set("X-API-Key", g.operatorKey)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode/100 != 2 {
		t.Fatalf("POST %s: HTTP %d", path, res.StatusCode)
	}
}

// Close codes as docs/protocol.md says: a reconnect-range code reconnects, a terminal one closes.
func TestCloseCodes(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	var statuses collector[Status]
	c := newClient(t, shared.url, Options{Token: shared.token("close-codes"), OnStatus: statuses.add})
	var got collector[Message]
	name := roomName(t)
	if _, err := c.Room(name).Subscribe(ctx, got.add); err != nil {
		t.Fatal(err)
	}
	// 4000-4499: reconnect (the server's disconnect with a code of that range)
	apiPost(t, shared, "/api/v1/tenants/acme/disconnect", `{"user":"close-codes","code":4003,"reason":"test"}`)
	eventually(t, 10*time.Second, "reconnected", func() bool {
		for _, s := range statuses.all() {
			if s.Kind == StatusDisconnected && s.Code == 4003 && s.WillReconnect {
				return c.Connected() && c.Room(name).Subscribed()
			}
		}
		return false
	})
	// 4504 (kicked): terminal, no reconnect
	apiPost(t, shared, "/api/v1/tenants/acme/kick", `{"user":"close-codes"}`)
	eventually(t, 10*time.Second, "closed", func() bool { return c.Status().Kind == StatusClosed })
	if st := c.Status(); st.Code != CloseKicked {
		t.Fatalf("status %+v", st)
	}
	if _, err := c.Room(name).Publish(ctx, 1); !errors.Is(err, ErrClientClosed) {
		t.Fatalf("publish after a kick: %v", err)
	}
	// Connect starts over
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Room(name).Publish(ctx, 1); err != nil {
		t.Fatal(err)
	}
}

// A token provider: used at connect, for the refresh before expiry (an auth frame on the live connection), and
// after a refused token.
func TestTokenProviderAndRefresh(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	var calls collector[time.Time]
	provider := func(context.Context) (string, error) {
		calls.add(time.Now())
		return mintToken(shared.secret, "refresher", "acme", 4*time.Second, nil), nil
	}
	var tokens collector[int64]
	var statuses collector[Status]
	c := newClient(t, shared.url, Options{TokenProvider: provider, OnToken: tokens.add, OnStatus: statuses.add})
	// a 4s token is refreshed halfway (the margin is at most half the remaining life)
	eventually(t, 10*time.Second, "two refreshes", func() bool { return tokens.len() >= 2 })
	for _, s := range statuses.all() {
		if s.Kind == StatusDisconnected {
			t.Fatalf("the refresh reconnected: %+v", s)
		}
	}
	if at := tokens.all()[0]; at <= time.Now().UnixMilli() {
		t.Fatalf("expiry %d is not in the future", at)
	}
	// explicit refresh with a given token
	at, err := c.Refresh(ctx, mintToken(shared.secret, "refresher", "acme", time.Hour, nil))
	if err != nil || at < time.Now().Add(50*time.Minute).UnixMilli() {
		t.Fatalf("refresh: %d %v", at, err)
	}
	// a token of another subject is refused
	if _, err := c.Refresh(ctx, shared.token("someone-else")); CodeOf(err) != CodeAuthMismatch {
		t.Fatalf("refresh with another subject: %v", err)
	}
	if _, err := c.Room(roomName(t)).Publish(ctx, "still here"); err != nil {
		t.Fatal(err)
	}

	// A provider whose first token is refused: the upgrade's 401 is retried once with a fresh token.
	first := true
	var calls2 collector[bool]
	flaky := func(context.Context) (string, error) {
		calls2.add(true)
		if first {
			first = false
			return mintToken("wrong-secret-of-at-least-32-characters!", "alice", "acme", time.Hour, nil), nil
		}
		return shared.token("alice"), nil
	}
	c2 := newClient(t, shared.url, Options{TokenProvider: flaky})
	if !c2.Connected() || calls2.len() != 2 {
		t.Fatalf("connected %v after %d provider calls", c2.Connected(), calls2.len())
	}
}

// Every goroutine of a client ends with Close: after connections, subscriptions, reconnects and requests.
func TestNoGoroutineLeakAfterClose(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	relay := startProxy(t, shared.port)
	ignore := goleak.IgnoreCurrent()
	c, err := New(relay.url(), Options{Token: shared.token("leak"), Reconnect: ReconnectOptions{InitialDelay: 20 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	var got collector[Message]
	name := roomName(t)
	if _, err := c.Room(name).Subscribe(ctx, got.add); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := c.Room(name).Publish(ctx, i, PublishOptions{Echo: true}); err != nil {
			t.Fatal(err)
		}
	}
	relay.sever()
	eventually(t, 10*time.Second, "reconnected", func() bool { return relay.accepted.Load() == 2 && c.Connected() })
	if _, err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if st := c.Status(); st.Kind != StatusClosed {
		t.Fatalf("status %+v", st)
	}
	// a second client closed while it waits to reconnect (the server is unreachable)
	c2, err := New("ws://127.0.0.1:1/ws", Options{Token: "t", Reconnect: ReconnectOptions{InitialDelay: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := c2.Connect(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("connect to nothing: %v", err)
	}
	if err := c2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	relay.sever()
	goleak.VerifyNone(t, ignore)
}

// A heartbeat that gets no answer drops the connection (4001) and reconnects: here the relay stops forwarding.
func TestHeartbeatTimeout(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	relay := startProxy(t, shared.port)
	var statuses collector[Status]
	c := newClient(t, relay.url(), Options{Token: shared.token("hb"), OnStatus: statuses.add,
		Heartbeat: HeartbeatOptions{Interval: 200 * time.Millisecond, Timeout: 300 * time.Millisecond}})
	if _, err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	relay.freeze()
	eventually(t, 10*time.Second, "a 4001 disconnect", func() bool {
		for _, s := range statuses.all() {
			if s.Kind == StatusDisconnected && s.Code == ClosePingTimeout && s.WillReconnect {
				return true
			}
		}
		return false
	})
	relay.thaw()
	eventually(t, 10*time.Second, "reconnected", func() bool { return c.Connected() })
}

// Requests made while the client reconnects are queued and go out, in the order they were made, after the welcome.
func TestRequestsQueuedWhileReconnecting(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	relay := startProxy(t, shared.port)
	c := newClient(t, relay.url(), Options{Token: shared.token("queued")})
	name := roomName(t)
	relay.refuse.Store(true)
	relay.sever()
	eventually(t, 5*time.Second, "reconnecting", func() bool { return c.Status().Kind == StatusReconnecting || c.Status().Kind == StatusConnecting })
	const n = 20
	acks := make([]chan Ack, n)
	for i := 0; i < n; i++ {
		acks[i] = make(chan Ack, 1)
		go func() {
			ack, err := c.Room(name).Publish(ctx, map[string]int{"n": i})
			if err != nil {
				t.Error(err)
			}
			acks[i] <- ack
		}()
		// each request is queued before the next is made
		eventually(t, 5*time.Second, "queued", func() bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			return len(c.pending) == i+1
		})
	}
	relay.refuse.Store(false)
	for i := 0; i < n; i++ {
		select {
		case ack := <-acks[i]:
			if ack.Offset != uint64(i+1) {
				t.Fatalf("request %d got offset %d", i, ack.Offset)
			}
		case <-ctx.Done():
			t.Fatal("no ack")
		}
	}
}

// A token that expires without a refresh: the server closes with 4004; without a token provider that is terminal.
func TestTokenExpiredWithoutProvider(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	c := newClient(t, shared.url, Options{Token: mintToken(shared.secret, "short-lived", "acme", 2*time.Second, nil)})
	eventually(t, 20*time.Second, "closed", func() bool { return c.Status().Kind == StatusClosed })
	if st := c.Status(); st.Code != CloseTokenExpired {
		t.Fatalf("status %+v", st)
	}
	if _, err := c.Ping(ctx); !errors.Is(err, ErrClientClosed) {
		t.Fatalf("ping after expiry: %v", err)
	}
}
