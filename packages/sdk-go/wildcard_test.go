package arqon

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

type sentMsg struct {
	offset uint64
	n      int
}

func byRoom(t *testing.T, msgs []Message) map[string][]sentMsg {
	t.Helper()
	out := map[string][]sentMsg{}
	for _, m := range msgs {
		var p struct{ N int }
		if err := m.Decode(&p); err != nil {
			t.Fatal(err)
		}
		out[m.Room] = append(out[m.Room], sentMsg{m.Offset, p.N})
	}
	return out
}

// A pattern room gets the messages of every matching room with the concrete room, none of other rooms, and after a
// cut link catches up per concrete room: 0 lost, 0 duplicated, offset order per room.
func TestWildcardSubscriptionRecoversEachRoomAfterACut(t *testing.T) {
	for _, cc := range codecs {
		t.Run(cc.name, func(t *testing.T) {
			ctx := testCtx(t, 60*time.Second)
			base := roomName(t)
			pattern, roomA, roomB := base+":*", base+":a", base+":b"
			relay := startProxy(t, shared.port)
			watcher := newClient(t, relay.url(), Options{Token: shared.token("watcher"), Codec: cc.codec, Protocol: cc.protocol})
			pub := newClient(t, shared.url, Options{Token: shared.token("pub")})
			var got collector[Message]
			var subs collector[Subscribed]
			room := watcher.Room(pattern)
			if !room.IsPattern() || watcher.Room(roomA).IsPattern() {
				t.Fatal("IsPattern")
			}
			room.OnSubscribed(subs.add)
			first, err := room.Subscribe(ctx, got.add)
			if err != nil {
				t.Fatal(err)
			}
			if first.Room != pattern || room.Position() != nil {
				t.Fatalf("subscribed %+v, position %v", first, room.Position())
			}
			// A room object of a matching room that holds no subscription takes none of the pattern's messages.
			var idle collector[Message]
			watcher.Room(roomA).OnMessage(idle.add)

			sent := map[string][]sentMsg{}
			publish := func(n int) {
				target := roomB
				if n%2 == 1 {
					target = roomA
				}
				ack, err := pub.Room(target).Publish(ctx, map[string]int{"n": n})
				if err != nil {
					t.Fatal(err)
				}
				sent[target] = append(sent[target], sentMsg{ack.Offset, n})
			}
			// Not matched: another segment count, another prefix.
			for _, other := range []string{base + ":a:deeper", "x" + base + ":a"} {
				if _, err := pub.Room(other).Publish(ctx, map[string]int{"n": -1}); err != nil {
					t.Fatal(err)
				}
			}
			for n := 1; n <= 6; n++ {
				publish(n)
			}
			eventually(t, 5*time.Second, "the first six messages", func() bool { return got.len() == 6 })
			time.Sleep(100 * time.Millisecond)
			for i, m := range got.all() {
				want := roomB
				if i%2 == 0 {
					want = roomA
				}
				if m.Room != want || m.Epoch == "" {
					t.Fatalf("message %d: room %q epoch %q", i, m.Room, m.Epoch)
				}
			}
			if got.len() != 6 || idle.len() != 0 || watcher.Room(roomA).Position() != nil {
				t.Fatalf("%d messages, %d on the idle room", got.len(), idle.len())
			}

			if relay.sever() == 0 {
				t.Fatal("nothing to sever")
			}
			// Missed while away, in both rooms.
			for n := 7; n <= 12; n++ {
				publish(n)
			}
			eventually(t, 10*time.Second, "the renewal", func() bool {
				for _, s := range subs.all() {
					if s.Resubscribed {
						return true
					}
				}
				return false
			})
			for n := 13; n <= 16; n++ {
				publish(n)
			}
			eventually(t, 10*time.Second, fmt.Sprintf("16 messages (have %d)", got.len()), func() bool { return got.len() >= 16 })
			if _, err := watcher.Ping(ctx); err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond)
			if have := byRoom(t, got.all()); !reflect.DeepEqual(have, sent) || got.len() != 16 {
				t.Fatalf("got %v\nsent %v", have, sent)
			}
		})
	}
}

// The server sends each message once per connection (here from the room's own subscription): the pattern room and
// the exact room both get it; after Unsubscribe the pattern gets nothing more.
func TestWildcardAndExactRoomOnOneConnection(t *testing.T) {
	for _, cc := range codecs[:2] {
		t.Run(cc.name, func(t *testing.T) {
			ctx := testCtx(t, 30*time.Second)
			base := roomName(t)
			pattern, roomA, roomB := base+".**", base+".a", base+".b/c"
			c := newClient(t, shared.url, Options{Token: shared.token("both"), Codec: cc.codec, Protocol: cc.protocol})
			pub := newClient(t, shared.url, Options{Token: shared.token("pub")})
			var wild, exact collector[Message]
			if _, err := c.Room(roomA).Subscribe(ctx, exact.add); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Room(pattern).Subscribe(ctx, wild.add); err != nil {
				t.Fatal(err)
			}
			var acks []Ack
			for i, target := range []string{roomA, roomB, roomA} {
				ack, err := pub.Room(target).Publish(ctx, map[string]int{"n": i + 1})
				if err != nil {
					t.Fatal(err)
				}
				acks = append(acks, ack)
			}
			eventually(t, 5*time.Second, "both room objects", func() bool { return wild.len() == 3 && exact.len() == 2 })
			want := map[string][]sentMsg{roomA: {{acks[0].Offset, 1}, {acks[2].Offset, 3}}, roomB: {{acks[1].Offset, 2}}}
			if have := byRoom(t, wild.all()); !reflect.DeepEqual(have, want) {
				t.Fatalf("pattern got %v", have)
			}
			for _, m := range wild.all() {
				if m.Room == roomA && m.Epoch != acks[0].Epoch {
					t.Fatalf("epoch %q, want %q", m.Epoch, acks[0].Epoch)
				}
			}
			if err := c.Room(pattern).Unsubscribe(ctx); err != nil {
				t.Fatal(err)
			}
			for _, target := range []string{roomB, roomA} {
				if _, err := pub.Room(target).Publish(ctx, map[string]int{"n": 9}); err != nil {
					t.Fatal(err)
				}
			}
			eventually(t, 5*time.Second, "the exact room's next message", func() bool { return exact.len() == 3 })
			time.Sleep(100 * time.Millisecond)
			if wild.len() != 3 {
				t.Fatalf("%d messages after unsubscribing the pattern", wild.len())
			}
		})
	}
}

func TestWildcardRefusals(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	base := roomName(t)
	c := newClient(t, shared.url, Options{Token: shared.token("c")})
	if _, err := c.Room("a:***").Subscribe(ctx, nil); CodeOf(err) != CodeRoomInvalid {
		t.Fatalf("a:***: %v", err)
	}
	// A pattern has no position: the server refuses Since on it.
	if _, err := c.Room(base+":*").Subscribe(ctx, nil, SubscribeOptions{Since: &Position{Offset: 1, Epoch: "e"}}); CodeOf(err) != "VALIDATION_ERROR" {
		t.Fatalf("since: %v", err)
	}
	// A pattern is no room to publish to.
	if _, err := c.Room(base+":*").Publish(ctx, 1); CodeOf(err) != CodeRoomInvalid {
		t.Fatalf("publish: %v", err)
	}
	// The refused subscription left nothing behind (no Since is sent again).
	ok, err := c.Room(base + ":*").Subscribe(ctx, nil)
	if err != nil || ok.Room != base+":*" {
		t.Fatalf("%+v %v", ok, err)
	}
}

func TestCompilePattern(t *testing.T) {
	cases := []struct {
		pattern, room string
		match         bool
	}{
		{"orders:*", "orders:42", true},
		{"orders:*", "orders:42:x", false},
		{"orders:*", "orders.42", false},
		{"orders:**", "orders:42:x/y.z", true},
		{"orders:eu-*", "orders:eu-1", true},
		{"orders:eu-*", "orders:us-1", false},
		{"*", "lobby", true},
		{"*", "a:b", false},
		{"**", "a:b/c.d", true},
		{"a.b:*", "aXb:1", false},
		{"a+b:*", "a+b:1", true},
	}
	for _, tc := range cases {
		if got := compilePattern(tc.pattern).MatchString(tc.room); got != tc.match {
			t.Errorf("%q ~ %q = %v, want %v", tc.pattern, tc.room, got, tc.match)
		}
	}
}
