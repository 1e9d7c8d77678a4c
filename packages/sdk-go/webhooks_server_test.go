package arqon

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// received is one POST the loopback receiver got from the gateway, with the verdict of VerifyWebhook in the handler.
type received struct {
	header http.Header
	body   []byte
	event  WebhookEvent
	err    error
}

// TestWebhookFromRealGateway: a real `arqon serve` (allowed to reach loopback over http) delivers room messages with
// op.webhook to an httptest receiver; the receiver verifies the real signatures with VerifyWebhook, a tampered body
// and a replay past the tolerance are refused, and after op.webhook.rotate_secret either secret verifies.
func TestWebhookFromRealGateway(t *testing.T) {
	g, err := startGateway(0, "s-"+randomHex(20), "op-"+randomHex(16), "--outbound-allow", "127.0.0.1", "--outbound-allow-http")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.stop)

	var secrets atomicSecrets
	deliveries := make(chan received, 16)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		event, verr := VerifyWebhook(secrets.get(), r.Header, body)
		deliveries <- received{header: r.Header.Clone(), body: body, event: event, err: verr}
		if verr != nil {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, CodeOf(verr))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(receiver.Close)
	if !strings.HasPrefix(receiver.URL, "http://127.0.0.1:") {
		t.Fatalf("receiver is not on loopback: %s", receiver.URL)
	}

	ctx := testCtx(t, 60*time.Second)
	admin := newClient(t, g.url, Options{Token: mintToken(g.secret, "root", "acme", time.Hour, map[string]any{"role": "admin"})})
	room := roomName(t)
	res, err := admin.Command(ctx, "op.webhook.register", map[string]any{"name": "go-verifier", "room": room, "url": receiver.URL + "/hook"})
	if err != nil {
		t.Fatalf("op.webhook.register: %v", err)
	}
	var reg struct{ Secret string }
	if err := json.Unmarshal(res, &reg); err != nil || !strings.HasPrefix(reg.Secret, "whsec_") {
		t.Fatalf("op.webhook.register answered %s (%v)", res, err)
	}
	secrets.set([]string{reg.Secret})

	next := func(what string) received {
		t.Helper()
		select {
		case d := <-deliveries:
			return d
		case <-time.After(20 * time.Second):
			t.Fatalf("no webhook delivery within 20s (%s)", what)
		}
		return received{}
	}

	// 1. A real delivery verifies, and its body is the room message.
	ack, err := admin.Room(room).Publish(ctx, map[string]any{"n": 1, "text": "héllo"})
	if err != nil {
		t.Fatal(err)
	}
	d := next("first message")
	if d.err != nil {
		t.Fatalf("the real delivery was refused: %v (headers %v, body %s)", d.err, d.header, d.body)
	}
	if !strings.HasPrefix(d.event.ID, "msg_") || d.event.ID != d.header.Get("webhook-id") {
		t.Fatalf("webhook-id %q", d.event.ID)
	}
	if now := time.Now().Unix(); d.event.Timestamp < now-60 || d.event.Timestamp > now+5 {
		t.Fatalf("webhook-timestamp %d, clock %d", d.event.Timestamp, now)
	}
	delivery, err := d.event.Delivery()
	if err != nil {
		t.Fatal(err)
	}
	if delivery.Room != room || delivery.Offset != ack.Offset || delivery.Epoch != ack.Epoch || delivery.Sender != "root" ||
		delivery.PayloadFormat != "json" || string(delivery.Payload) != `{"n":1,"text":"héllo"}` {
		t.Fatalf("delivery %+v, ack %+v", delivery, ack)
	}

	// 2. The same delivery with a tampered body, another secret, or checked six minutes later (a replay) is refused.
	tampered := []byte(strings.Replace(string(d.body), `"n":1`, `"n":9`, 1))
	if string(tampered) == string(d.body) {
		t.Fatalf("the body %s holds no \"n\":1 to tamper with", d.body)
	}
	_, err = VerifyWebhook([]string{reg.Secret}, d.header, tampered)
	if !errors.Is(err, ErrWebhookSignatureMismatch) {
		t.Fatalf("tampered body: %v", err)
	}
	if _, err := VerifyWebhook([]string{newWebhookSecret(t)}, d.header, d.body); !errors.Is(err, ErrWebhookSignatureMismatch) {
		t.Fatalf("another secret: %v", err)
	}
	later := func() time.Time { return time.Unix(d.event.Timestamp, 0).Add(6 * time.Minute) }
	_, err = VerifyWebhook([]string{reg.Secret}, d.header, d.body, WebhookOptions{Now: later})
	var refused *WebhookVerificationError
	if !errors.As(err, &refused) || refused.Err.Code != CodeWebhookTimestampTooOld || refused.Err.Message != "webhook-timestamp is 360 s old (tolerance 300 s)" {
		t.Fatalf("replay six minutes later: %v", err)
	}
	// An old timestamp put on the real signature does not verify either: the timestamp is signed.
	old := d.header.Clone()
	old.Set("webhook-timestamp", "1700000000")
	if _, err := VerifyWebhook([]string{reg.Secret}, old, d.body); !errors.Is(err, ErrWebhookTimestampTooOld) {
		t.Fatalf("old timestamp: %v", err)
	}
	if _, err := VerifyWebhook([]string{reg.Secret}, old, d.body, WebhookOptions{Now: func() time.Time { return time.Unix(1700000000, 0) }}); !errors.Is(err, ErrWebhookSignatureMismatch) {
		t.Fatalf("old timestamp within the tolerance: %v", err)
	}

	// 3. A receiver with the wrong secret answers 401; the gateway retries, and once the receiver has the right
	// secret the same message (same webhook-id) verifies.
	secrets.set([]string{newWebhookSecret(t)})
	if _, err := admin.Room(room).Publish(ctx, map[string]any{"n": 2}); err != nil {
		t.Fatal(err)
	}
	wrong := next("second message, wrong secret")
	if !errors.Is(wrong.err, ErrWebhookSignatureMismatch) {
		t.Fatalf("the receiver with another secret: %v", wrong.err)
	}
	secrets.set([]string{reg.Secret})
	retried := next("second message, retried")
	// At most a few more: an attempt may have been verified just before the secret changed.
	for attempt := 0; retried.err != nil && attempt < 4; attempt++ {
		retried = next("second message, retried again")
	}
	if retried.err != nil || retried.event.ID != wrong.header.Get("webhook-id") {
		t.Fatalf("retry: %v, id %q want %q", retried.err, retried.event.ID, wrong.header.Get("webhook-id"))
	}

	// 4. Rotation: the gateway signs with the new and the previous secret; each verifies alone.
	res, err = admin.Command(ctx, "op.webhook.rotate_secret", map[string]any{"name": "go-verifier"})
	if err != nil {
		t.Fatalf("op.webhook.rotate_secret: %v", err)
	}
	var rot struct{ Secret string }
	if err := json.Unmarshal(res, &rot); err != nil || !strings.HasPrefix(rot.Secret, "whsec_") || rot.Secret == reg.Secret {
		t.Fatalf("op.webhook.rotate_secret answered %s (%v)", res, err)
	}
	secrets.set([]string{rot.Secret, reg.Secret})
	if _, err := admin.Room(room).Publish(ctx, map[string]any{"n": 3}); err != nil {
		t.Fatal(err)
	}
	r := next("third message, after the rotation")
	if r.err != nil {
		t.Fatalf("after the rotation: %v", r.err)
	}
	if n := len(strings.Fields(r.header.Get("webhook-signature"))); n != 2 {
		t.Fatalf("%d signatures after a rotation, want 2: %q", n, r.header.Get("webhook-signature"))
	}
	for _, s := range []string{rot.Secret, reg.Secret} {
		if _, err := VerifyWebhook([]string{s}, r.header, r.body); err != nil {
			t.Fatalf("one secret of the rotation: %v", err)
		}
	}
	var p struct{ Payload struct{ N int } }
	if err := r.event.Decode(&p); err != nil || p.Payload.N != 3 {
		t.Fatalf("third delivery %s (%v)", r.body, err)
	}
}

// atomicSecrets is the receiver's configuration, changed by the test while the handler reads it.
type atomicSecrets struct {
	mu sync.Mutex
	v  []string
}

func (s *atomicSecrets) set(v []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.v = append([]string(nil), v...)
}

func (s *atomicSecrets) get() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.v...)
}
