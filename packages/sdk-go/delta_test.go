package arqon

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func deltaNumber(n int) string {
	const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~"
	if n == 0 {
		return "0"
	}
	s := ""
	for n > 0 {
		s = string(digits[n%64]) + s
		n /= 64
	}
	return s
}

func TestApplyDelta(t *testing.T) {
	base := []byte("hello world")
	target := "hello, world! " + strings.Repeat("x", 70)
	d := deltaNumber(len(target)) + "\n" + "5@0," + "1:," + "6@5," + deltaNumber(len(target)-12) + ":" + target[12:] + deltaNumber(int(deltaChecksum([]byte(target)))) + ";"
	out, err := applyDelta(base, []byte(d), maxDeltaOutput)
	if err != nil || string(out) != target {
		t.Fatalf("%q %v", out, err)
	}
	bad := []string{
		"",                           // no header
		"5",                          // no newline
		deltaNumber(3) + "\n3@20,0;", // copy past the base
		deltaNumber(3) + "\n3:ab",    // insert past the delta
		deltaNumber(2) + "\n2@0,0;",  // wrong checksum
		deltaNumber(3) + "\n2@0,",    // no checksum
		deltaNumber(1) + "\n1?",      // unknown command
		"~~~~~~\n",                   // too large
	}
	for _, b := range bad {
		if _, err := applyDelta(base, []byte(b), maxDeltaOutput); err == nil {
			t.Errorf("%q applied", b)
		}
	}
}

// Delta subscriptions against the gateway's encoder: payloads that change little arrive as deltas and are rebuilt,
// across a reconnect too (the renewal starts again with a full payload).
func TestDeltaSubscription(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	relay := startProxy(t, shared.port)
	name := roomName(t)
	sub := newClient(t, relay.url(), Options{Token: shared.token("delta-reader"), Codec: ProtobufCodec})
	var got collector[Message]
	if _, err := sub.Room(name).Subscribe(ctx, got.add, SubscribeOptions{Delta: true}); err != nil {
		t.Fatal(err)
	}
	pub := newClient(t, shared.url, Options{Token: shared.token("delta-writer")})
	text := strings.Repeat("the quick brown fox jumps over the lazy dog; ", 40)
	var sent []map[string]any
	for i := 0; i < 20; i++ {
		if i == 10 {
			eventually(t, 10*time.Second, "ten messages", func() bool { return got.len() == 10 })
			relay.sever()
		}
		p := map[string]any{"n": i, "text": text, "tail": strings.Repeat("z", i)}
		sent = append(sent, p)
		publishPaced(t, ctx, pub.Room(name), p)
	}
	eventually(t, 20*time.Second, "twenty messages", func() bool { return got.len() == 20 })
	for i, m := range got.all() {
		var back map[string]any
		if err := json.Unmarshal(m.Payload, &back); err != nil || m.Binary {
			t.Fatalf("message %d: %s %v", i, m.Payload, err)
		}
		want, _ := json.Marshal(sent[i])
		var wantV map[string]any
		_ = json.Unmarshal(want, &wantV)
		if !reflect.DeepEqual(back, wantV) || m.Offset != uint64(i+1) {
			t.Fatalf("message %d rebuilt as %s", i, m.Payload)
		}
	}
	r := sub.Room(name)
	sub.mu.Lock()
	applied := r.deltasApplied
	sub.mu.Unlock()
	if applied < 5 {
		t.Fatalf("only %d of 20 messages came as deltas (the first ten, but the first, should)", applied)
	}
}
