package arqon

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The body the TS and Python webhook tests sign (a room message, with a non-ASCII character).
const webhookBody = `{"room":"lobby","id":"m-1","offset":7,"epoch":"e1","payload":{"text":"héllo"}}`

func newWebhookSecret(t *testing.T) string {
	t.Helper()
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

func signed(t *testing.T, secrets []string, id string, at time.Time, body string) http.Header {
	t.Helper()
	h, err := SignWebhook(secrets, id, at, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// refusal verifies and expects a *WebhookVerificationError, which it returns.
func refusal(t *testing.T, secrets []string, h http.Header, body string, opts ...WebhookOptions) *WebhookVerificationError {
	t.Helper()
	_, err := VerifyWebhook(secrets, h, []byte(body), opts...)
	var refused *WebhookVerificationError
	if !errors.As(err, &refused) {
		t.Fatalf("want a *WebhookVerificationError, got %T %v", err, err)
	}
	return refused
}

func with(h http.Header, name, value string) http.Header {
	c := h.Clone()
	c.Set(name, value)
	return c
}

// --- interoperability with the reference implementation (the standardwebhooks npm package the TS tests use) ---

// referenceScript signs and verifies with standardwebhooks 1.1.1 (resolved from packages/sdk-ts's dependencies).
// stdin: {"sign": [{secret, id, timestamp, body}], "verify": [{secret, headers, body}]}; stdout: {"signed":
// [signature], "verified": [true | "<error message>"]}.
const referenceScript = `
const { createRequire } = require("node:module");
const path = require("node:path");
const { Webhook } = createRequire(path.join(process.argv[1], "packages", "sdk-ts", "package.json"))("standardwebhooks");
let input = "";
process.stdin.on("data", (d) => (input += d));
process.stdin.on("end", () => {
  const job = JSON.parse(input);
  const signed = job.sign.map((s) => new Webhook(s.secret).sign(s.id, new Date(s.timestamp * 1000), s.body));
  const verified = job.verify.map((v) => {
    try { new Webhook(v.secret).verify(v.body, v.headers); return true; } catch (e) { return String(e.message); }
  });
  process.stdout.write(JSON.stringify({ signed, verified }));
});
`

type referenceSign struct {
	Secret    string `json:"secret"`
	ID        string `json:"id"`
	Timestamp int64  `json:"timestamp"`
	Body      string `json:"body"`
}

type referenceVerify struct {
	Secret  string            `json:"secret"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

func reference(t *testing.T, sign []referenceSign, verify []referenceVerify) (signatures []string, verified []any) {
	t.Helper()
	if sign == nil {
		sign = []referenceSign{}
	}
	if verify == nil {
		verify = []referenceVerify{}
	}
	input, _ := json.Marshal(map[string]any{"sign": sign, "verify": verify})
	cmd := exec.Command("node", "-e", referenceScript, rootDir())
	cmd.Stdin = bytes.NewReader(input)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the reference standardwebhooks script failed (npm ci at the root installs it): %v", err)
	}
	var res struct {
		Signed   []string `json:"signed"`
		Verified []any    `json:"verified"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("reference output %q: %v", out, err)
	}
	if len(res.Signed) != len(sign) || len(res.Verified) != len(verify) {
		t.Fatalf("reference answered %d signatures and %d verdicts for %d and %d", len(res.Signed), len(res.Verified), len(sign), len(verify))
	}
	return res.Signed, res.Verified
}

func flat(h http.Header) map[string]string {
	m := map[string]string{}
	for k := range h {
		m[strings.ToLower(k)] = h.Get(k)
	}
	return m
}

func TestWebhookReferenceInterop(t *testing.T) {
	current, previous := newWebhookSecret(t), newWebhookSecret(t)
	now := time.Now().Unix()
	bodies := []string{webhookBody, "", "plain text, not JSON", `{"a":[1,2]}`}
	var sign []referenceSign
	for i, body := range bodies {
		sign = append(sign, referenceSign{Secret: current, ID: fmt.Sprintf("msg_ref_%d", i), Timestamp: now - int64(i), Body: body})
	}
	sign = append(sign, referenceSign{Secret: previous, ID: "msg_prev", Timestamp: now, Body: webhookBody})

	// What Go signs, for the reference to verify: one secret, a rotation (either secret verifies), a replay.
	goOne := signed(t, []string{current}, "msg_go", time.Time{}, webhookBody)
	goBoth := signed(t, []string{current, previous}, "msg_go_rot", time.Time{}, webhookBody)
	goOld := signed(t, []string{current}, "msg_go_old", time.Unix(now-301, 0), webhookBody)
	verify := []referenceVerify{
		{Secret: current, Headers: flat(goOne), Body: webhookBody},
		{Secret: current, Headers: flat(goBoth), Body: webhookBody},
		{Secret: previous, Headers: flat(goBoth), Body: webhookBody},
		{Secret: current, Headers: flat(goOld), Body: webhookBody},
		{Secret: current, Headers: flat(goOne), Body: strings.Replace(webhookBody, "héllo", "hello", 1)},
	}
	signatures, verdicts := reference(t, sign, verify)

	// Everything the reference signed verifies in Go, and Go's signature is the reference's byte for byte.
	for i, s := range sign {
		h := http.Header{"Webhook-Id": {s.ID}, "Webhook-Timestamp": {strconv.FormatInt(s.Timestamp, 10)}, "Webhook-Signature": {signatures[i]}}
		event, err := VerifyWebhook([]string{current, previous}, h, []byte(s.Body))
		if err != nil {
			t.Fatalf("reference delivery %s: %v", s.ID, err)
		}
		if event.ID != s.ID || event.Timestamp != s.Timestamp || string(event.Body) != s.Body {
			t.Fatalf("reference delivery %s: got %+v", s.ID, event)
		}
		mine := signed(t, []string{s.Secret}, s.ID, time.Unix(s.Timestamp, 0), s.Body)
		if got := mine.Get("webhook-signature"); got != signatures[i] {
			t.Fatalf("%s: Go signed %q, the reference %q", s.ID, got, signatures[i])
		}
	}
	if !regexp.MustCompile(`^v1,[A-Za-z0-9+/]{43}=$`).MatchString(goOne.Get("webhook-signature")) {
		t.Fatalf("signature %q", goOne.Get("webhook-signature"))
	}
	// The reference verifier accepts what Go signed and refuses the replay and the tampered body.
	for i, want := range []any{true, true, true, "Message timestamp too old", "No matching signature found"} {
		if verdicts[i] != want {
			t.Fatalf("reference verdict %d: got %v, want %v", i, verdicts[i], want)
		}
	}
}

// --- refusals ---

func TestWebhookReplayAndFutureTimestamps(t *testing.T) {
	secret := []string{newWebhookSecret(t)}
	now := time.Now()
	old := refusal(t, secret, signed(t, secret, "msg_old", now.Add(-301*time.Second), webhookBody), webhookBody)
	if old.Err.Code != CodeWebhookTimestampTooOld || !regexp.MustCompile(`^webhook-timestamp is 30[12] s old \(tolerance 300 s\)$`).MatchString(old.Err.Message) {
		t.Fatalf("old: %v", old)
	}
	if !errors.Is(old, ErrWebhookTimestampTooOld) || old.Err.Retryable() {
		t.Fatalf("old: errors.Is %v, retryable %v", errors.Is(old, ErrWebhookTimestampTooOld), old.Err.Retryable())
	}
	ahead := signed(t, secret, "msg_new", now.Add(360*time.Second), webhookBody)
	refused := refusal(t, secret, ahead, webhookBody)
	if refused.Err.Code != CodeWebhookTimestampTooNew || !regexp.MustCompile(`^webhook-timestamp is (359|360) s ahead \(tolerance 300 s\)$`).MatchString(refused.Err.Message) {
		t.Fatalf("ahead: %v", refused)
	}
	// Milliseconds where seconds belong (a common sender mistake) land far in the future.
	millis := with(ahead, "webhook-timestamp", strconv.FormatInt(time.Now().UnixMilli(), 10))
	if got := refusal(t, secret, millis, webhookBody).Err.Code; got != CodeWebhookTimestampTooNew {
		t.Fatalf("millis: %s", got)
	}
}

func TestWebhookRotation(t *testing.T) {
	current, previous := newWebhookSecret(t), newWebhookSecret(t)
	both := signed(t, []string{current, previous}, "msg_rot", time.Time{}, webhookBody)
	if n := len(strings.Split(both.Get("webhook-signature"), " ")); n != 2 {
		t.Fatalf("%d entries", n)
	}
	for _, secret := range []string{current, previous} {
		if e, err := VerifyWebhook([]string{secret}, both, []byte(webhookBody)); err != nil || e.ID != "msg_rot" {
			t.Fatalf("%v %v", e, err)
		}
	}
	// A receiver holding both secrets accepts a delivery that either one signed.
	for _, secret := range []string{current, previous} {
		h := signed(t, []string{secret}, "msg_one", time.Time{}, webhookBody)
		if e, err := VerifyWebhook([]string{current, previous}, h, []byte(webhookBody)); err != nil || e.ID != "msg_one" {
			t.Fatalf("%v %v", e, err)
		}
	}
	err := refusal(t, []string{newWebhookSecret(t), newWebhookSecret(t)}, both, webhookBody)
	if err.Err.Code != CodeWebhookSignatureMismatch || err.Err.Message != "no webhook-signature entry matches the body under any of the 2 secrets" {
		t.Fatalf("%v", err)
	}
}

func TestWebhookTampering(t *testing.T) {
	secret := []string{newWebhookSecret(t)}
	h := signed(t, secret, "msg_hook1_e1_7", time.Time{}, webhookBody)
	refused := refusal(t, secret, h, strings.Replace(webhookBody, "héllo", "hello", 1))
	if refused.Err.Code != CodeWebhookSignatureMismatch || refused.Err.Message != "no webhook-signature entry matches the body under the secret" {
		t.Fatalf("%v", refused)
	}
	if refused.Error() != "ARQ_WEBHOOK_SIGNATURE_MISMATCH: no webhook-signature entry matches the body under the secret" {
		t.Fatalf("Error() = %q", refused.Error())
	}
	var e *Error
	if !errors.As(error(refused), &e) || CodeOf(refused) != CodeWebhookSignatureMismatch || !errors.Is(refused, ErrWebhookSignatureMismatch) {
		t.Fatal("errors.As / CodeOf / errors.Is do not see the code")
	}
	// The id and the timestamp are signed too.
	if got := refusal(t, secret, with(h, "webhook-id", "msg_other"), webhookBody).Err.Code; got != CodeWebhookSignatureMismatch {
		t.Fatalf("id: %s", got)
	}
	ts, _ := strconv.ParseInt(h.Get("webhook-timestamp"), 10, 64)
	if got := refusal(t, secret, with(h, "webhook-timestamp", strconv.FormatInt(ts-1, 10)), webhookBody).Err.Code; got != CodeWebhookSignatureMismatch {
		t.Fatalf("timestamp: %s", got)
	}
	// Another secret.
	if got := refusal(t, []string{newWebhookSecret(t)}, h, webhookBody).Err.Message; got != "no webhook-signature entry matches the body under the secret" {
		t.Fatalf("other secret: %s", got)
	}
	// A binary body is signed as its bytes.
	raw := []byte{0xff, 0x00, 0x7b}
	hb, _ := SignWebhook(secret, "msg_b", time.Time{}, raw)
	if _, err := VerifyWebhook(secret, hb, raw); err != nil {
		t.Fatal(err)
	}
	if got := refusal(t, secret, hb, "\xff\x00\x7c").Err.Code; got != CodeWebhookSignatureMismatch {
		t.Fatalf("binary: %s", got)
	}
}

func TestWebhookMissingHeaders(t *testing.T) {
	secret := []string{newWebhookSecret(t)}
	h := signed(t, secret, "msg_1", time.Time{}, webhookBody)
	for _, name := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
		rest := h.Clone()
		rest.Del(name)
		withEmpty := rest.Clone()
		withEmpty.Set(name, "")
		withBlank := rest.Clone()
		withBlank.Set(name, "  ")
		withNone := rest.Clone()
		withNone[http.CanonicalHeaderKey(name)] = []string{}
		for i, without := range []http.Header{rest, withEmpty, withBlank, withNone} {
			refused := refusal(t, secret, without, webhookBody)
			if refused.Err.Code != CodeWebhookHeaderMissing || refused.Err.Message != "the "+name+" header is missing" ||
				!reflect.DeepEqual(refused.Err.Detail, map[string]any{"header": name}) {
				t.Fatalf("%s case %d: %v %v", name, i, refused, refused.Err.Detail)
			}
		}
	}
	if got := refusal(t, secret, nil, webhookBody).Err.Code; got != CodeWebhookHeaderMissing {
		t.Fatalf("nil header: %s", got)
	}
}

func TestWebhookMalformedSignatures(t *testing.T) {
	secret := []string{newWebhookSecret(t)}
	h := signed(t, secret, "msg_1", time.Time{}, webhookBody)
	good := h.Get("webhook-signature")[3:]
	for _, signature := range []string{"garbage", "v1,", "v1", "v1,not base64!", "v1," + good[:20], "v1;" + good, "v2," + good, "v1a," + good, "V1," + good,
		"v1," + good[:43] + "==", "v1," + good[:42] + "=", "v1,=" + good[:43]} {
		refused := refusal(t, secret, with(h, "webhook-signature", signature), webhookBody)
		if refused.Err.Code != CodeWebhookSignatureMalformed || refused.Err.Message != `webhook-signature holds no "v1,<base64 HMAC-SHA256>" entry` ||
			!reflect.DeepEqual(refused.Err.Detail, map[string]any{"header": "webhook-signature"}) {
			t.Fatalf("%q: %v", signature, refused)
		}
	}
	// Unknown versions and malformed entries beside a good one are skipped (the spec's forward compatibility), and
	// unpadded base64 is accepted.
	for _, signature := range []string{"v1a,xyz garbage v1," + good, "v1," + strings.TrimRight(good, "=")} {
		if _, err := VerifyWebhook(secret, with(h, "webhook-signature", signature), []byte(webhookBody)); err != nil {
			t.Fatalf("%q: %v", signature, err)
		}
	}
}

func TestWebhookInvalidTimestamps(t *testing.T) {
	secret := []string{newWebhookSecret(t)}
	h := signed(t, secret, "msg_1", time.Time{}, webhookBody)
	for _, ts := range []string{"soon", "1700000000.5", "-1700000000", "1e9", "0x10", "12 34", "١٧٠٠٠٠٠٠٠٠", "+1700000000", "1234567890123456"} {
		refused := refusal(t, secret, with(h, "webhook-timestamp", ts), webhookBody)
		if refused.Err.Code != CodeWebhookTimestampInvalid || refused.Err.Message != "webhook-timestamp is not an integer number of seconds" ||
			!reflect.DeepEqual(refused.Err.Detail, map[string]any{"header": "webhook-timestamp"}) {
			t.Fatalf("%q: %v", ts, refused)
		}
	}
}

// --- tolerance, headers, payloads, secrets ---

func TestWebhookToleranceAndClock(t *testing.T) {
	secret := []string{newWebhookSecret(t)}
	const at = 1_700_000_000
	h := signed(t, secret, "msg_t", time.Unix(at, 0), webhookBody)
	clock := func(sec int64) func() time.Time { return func() time.Time { return time.Unix(sec, 999_000_000) } }
	for _, sec := range []int64{at + 300, at - 300} {
		if e, err := VerifyWebhook(secret, h, []byte(webhookBody), WebhookOptions{Now: clock(sec)}); err != nil || e.Timestamp != at {
			t.Fatalf("edge %d: %v %v", sec, e, err)
		}
	}
	if got := refusal(t, secret, h, webhookBody, WebhookOptions{Now: clock(at + 301)}).Err.Code; got != CodeWebhookTimestampTooOld {
		t.Fatal(got)
	}
	if got := refusal(t, secret, h, webhookBody, WebhookOptions{Now: clock(at - 301)}).Err.Code; got != CodeWebhookTimestampTooNew {
		t.Fatal(got)
	}
	detail := refusal(t, secret, h, webhookBody, WebhookOptions{Now: clock(at + 11), Tolerance: 10 * time.Second}).Err.Detail
	if !reflect.DeepEqual(detail, map[string]any{"timestamp": int64(at), "now": int64(at + 11), "toleranceSec": int64(10)}) {
		t.Fatalf("detail %v", detail)
	}
	if _, err := VerifyWebhook(secret, h, []byte(webhookBody), WebhookOptions{Now: clock(at + 3600), Tolerance: time.Hour}); err != nil {
		t.Fatal(err)
	}
}

func TestWebhookHeaderNamesAndRepeats(t *testing.T) {
	secret := []string{newWebhookSecret(t)}
	h := signed(t, secret, "msg_case", time.Time{}, webhookBody)
	// Map keys as a hand-built http.Header may hold them: not canonical.
	shouted := http.Header{
		"webhook-id":        {h.Get("webhook-id")},
		"WEBHOOK-TIMESTAMP": {h.Get("webhook-timestamp")},
		"webhook-Signature": {h.Get("webhook-signature")},
		"Content-Type":      {"application/json"},
	}
	if e, err := VerifyWebhook(secret, shouted, []byte(webhookBody)); err != nil || e.ID != "msg_case" {
		t.Fatalf("%v %v", e, err)
	}
	// A header sent twice: as two values, and ", "-joined as some proxies combine it.
	twice := h.Clone()
	twice["Webhook-Signature"] = []string{"v1a,unknown", h.Get("webhook-signature")}
	joined := with(h, "webhook-signature", "v1a,unknown, "+h.Get("webhook-signature"))
	for _, hh := range []http.Header{twice, joined} {
		if _, err := VerifyWebhook(secret, hh, []byte(webhookBody)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestWebhookOverHTTP(t *testing.T) {
	secret := []string{newWebhookSecret(t)}
	var seen []WebhookDelivery
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "body", http.StatusBadRequest)
			return
		}
		event, err := VerifyWebhook(secret, r.Header, body)
		if err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, CodeOf(err))
			return
		}
		d, err := event.Delivery()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		seen = append(seen, d) // one request at a time in this test
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("not loopback: %s", srv.URL)
	}
	post := func(body string, h http.Header) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/hook", strings.NewReader(body))
		req.Header = h.Clone()
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	h := signed(t, secret, "msg_http", time.Time{}, webhookBody)
	h["Webhook-Signature"] = []string{"v1a,unknown", h.Get("webhook-signature")} // two header lines on the wire
	if status, _ := post(webhookBody, h); status != http.StatusNoContent {
		t.Fatalf("status %d", status)
	}
	if len(seen) != 1 || seen[0].Room != "lobby" || seen[0].Offset != 7 || string(seen[0].Payload) != `{"text":"héllo"}` {
		t.Fatalf("seen %+v", seen)
	}
	if status, text := post(strings.Replace(webhookBody, "lobby", "lobby2", 1), h); status != 401 || text != CodeWebhookSignatureMismatch {
		t.Fatalf("tampered: %d %s", status, text)
	}
}

func TestWebhookPayloads(t *testing.T) {
	secret := []string{newWebhookSecret(t)}
	for _, c := range []struct {
		text    string
		payload any
	}{
		{`{"a":[1,2]}`, map[string]any{"a": []any{1.0, 2.0}}},
		{`"quoted"`, "quoted"},
		{"42", 42.0},
		{"plain text, not JSON", "plain text, not JSON"},
		{"", nil},
	} {
		e, err := VerifyWebhook(secret, signed(t, secret, "msg_p", time.Time{}, c.text), []byte(c.text))
		if err != nil || !reflect.DeepEqual(e.Payload, c.payload) || string(e.Body) != c.text {
			t.Fatalf("%q: %#v %v", c.text, e.Payload, err)
		}
	}
	e, _ := VerifyWebhook(secret, signed(t, secret, "msg_d", time.Time{}, webhookBody), []byte(webhookBody))
	var v struct {
		Payload struct{ Text string }
	}
	if err := e.Decode(&v); err != nil || v.Payload.Text != "héllo" {
		t.Fatalf("Decode: %v %+v", err, v)
	}
}

func TestWebhookSecrets(t *testing.T) {
	h := signed(t, []string{newWebhookSecret(t)}, "msg_s", time.Time{}, webhookBody)
	for _, secrets := range [][]string{nil, {}, {""}, {"whsec_"}, {"whsec_not*base64"}, {"c2VjcmV0IGtleQ=="}, {"plain-secret"}, {newWebhookSecret(t), "plain"}} {
		_, err := VerifyWebhook(secrets, h, []byte(webhookBody))
		var config *WebhookConfigError
		if !errors.As(err, &config) || config.Err.Code != CodeWebhookSecretInvalid || !errors.Is(err, ErrWebhookSecretInvalid) {
			t.Fatalf("%q: %T %v", secrets, err, err)
		}
		var refused *WebhookVerificationError
		if errors.As(err, &refused) {
			t.Fatalf("%q: a config error is not a refused delivery", secrets)
		}
		if _, err := SignWebhook(secrets, "x", time.Time{}, []byte(webhookBody)); !errors.As(err, &config) {
			t.Fatalf("sign %q: %v", secrets, err)
		}
	}
	// Key bytes, as whsec_ with and without padding, are the same key.
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	hk := signed(t, []string{WebhookSecretFromKey(key)}, "msg_k", time.Time{}, webhookBody)
	unpadded := "whsec_" + base64.RawStdEncoding.EncodeToString(key)
	for _, s := range []string{WebhookSecretFromKey(key), unpadded} {
		if e, err := VerifyWebhook([]string{s}, hk, []byte(webhookBody)); err != nil || e.ID != "msg_k" {
			t.Fatalf("%s: %v", s, err)
		}
	}
	if WebhookSecretFromKey(nil) != "whsec_" {
		t.Fatal("an empty key must give the refused whsec_")
	}
}

func TestSignWebhookRefusals(t *testing.T) {
	secret := []string{newWebhookSecret(t)}
	for _, c := range []struct {
		id   string
		at   time.Time
		want string
	}{
		{"m", time.Unix(-1, 0), "whole seconds"},
		{"", time.Time{}, "non-empty string without whitespace"},
		{"a b", time.Time{}, "non-empty string without whitespace"},
	} {
		if _, err := SignWebhook(secret, c.id, c.at, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%q %v: %v", c.id, c.at, err)
		}
	}
	h := signed(t, secret, "msg_h", time.Unix(1_700_000_000, 0), "")
	if got := fmt.Sprint(h); got != fmt.Sprint(http.Header{"Webhook-Id": {"msg_h"}, "Webhook-Timestamp": {"1700000000"}, "Webhook-Signature": {h.Get("webhook-signature")}}) {
		t.Fatalf("headers %s", got)
	}
}

// The Go codes are the TS verifier's WebhookErrorCode values and the Python verifier's constants, minus
// ARQ_WEBHOOK_CRYPTO_UNAVAILABLE (Web Crypto only, listed in codes.go for completeness but never raised here).
func TestWebhookCodesMatchTSAndPython(t *testing.T) {
	read := func(rel string) string {
		b, err := os.ReadFile(filepath.Join(rootDir(), rel))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	ts := read("packages/sdk-ts/src/webhooks.ts")
	block := ts[strings.Index(ts, "export const WebhookErrorCode = {"):]
	block = block[:strings.Index(block, "} as const;")]
	tsCodes := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^\s*([A-Z_]+): "(ARQ_WEBHOOK_[A-Z_]+)",$`).FindAllStringSubmatch(block, -1) {
		tsCodes[m[1]] = m[2]
	}
	py := read("packages/sdk-py/src/arqon/webhooks.py")
	pyCodes := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^([A-Z_]+) = "(ARQ_WEBHOOK_[A-Z_]+)"$`).FindAllStringSubmatch(py, -1) {
		pyCodes[m[1]] = m[2]
	}
	goCodes := map[string]string{
		"HEADER_MISSING":      CodeWebhookHeaderMissing,
		"SIGNATURE_MALFORMED": CodeWebhookSignatureMalformed,
		"TIMESTAMP_INVALID":   CodeWebhookTimestampInvalid,
		"TIMESTAMP_TOO_OLD":   CodeWebhookTimestampTooOld,
		"TIMESTAMP_TOO_NEW":   CodeWebhookTimestampTooNew,
		"SIGNATURE_MISMATCH":  CodeWebhookSignatureMismatch,
		"SECRET_INVALID":      CodeWebhookSecretInvalid,
	}
	if !reflect.DeepEqual(pyCodes, goCodes) {
		t.Fatalf("Python %v, Go %v", pyCodes, goCodes)
	}
	if tsCodes["CRYPTO_UNAVAILABLE"] != CodeWebhookCryptoUnavailable {
		t.Fatalf("TS CRYPTO_UNAVAILABLE %q", tsCodes["CRYPTO_UNAVAILABLE"])
	}
	delete(tsCodes, "CRYPTO_UNAVAILABLE")
	if !reflect.DeepEqual(tsCodes, goCodes) {
		t.Fatalf("TS %v, Go %v", tsCodes, goCodes)
	}
	// The messages are the TS verifier's, word for word.
	for _, msg := range []string{
		`"webhook-timestamp is not an integer number of seconds"`,
		"`the ${name} header is missing`",
		`'webhook-signature holds no "v1,<base64 HMAC-SHA256>" entry'`,
		"`webhook-timestamp is ${now - timestamp} s old (tolerance ${tolerance} s)`",
		"`no webhook-signature entry matches the body under ${",
	} {
		if !strings.Contains(ts, msg) {
			t.Fatalf("the TS verifier no longer says %s: update webhooks.go and this test", msg)
		}
	}
}

// --- the receiver in docs/sdk-go.md ---

// TestWebhookDocReceiver builds the net/http receiver of docs/sdk-go.md's "Verifying webhook deliveries" as written (a
// module of its own using this working copy), runs it on a loopback port and POSTs signed deliveries to it.
func TestWebhookDocReceiver(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(rootDir(), "docs", "sdk-go.md"))
	if err != nil {
		t.Fatal(err)
	}
	section := string(doc)[strings.Index(string(doc), "## Verifying webhook deliveries"):]
	m := regexp.MustCompile("(?s)```go\n(.*?)```").FindStringSubmatch(section)
	if m == nil || !strings.Contains(m[1], "arqon.VerifyWebhook(") {
		t.Fatal("no go block calling arqon.VerifyWebhook in the section")
	}
	dir := t.TempDir()
	sdk, _ := filepath.Abs(".")
	gomod := "module doc-receiver\n\ngo 1.26\n\nrequire github.com/arqonbus/arqonbus/packages/sdk-go v0.0.0\n\n" +
		"require (\n\tgithub.com/coder/websocket v1.8.15 // indirect\n\tgoogle.golang.org/protobuf v1.36.12 // indirect\n)\n\n" +
		"replace github.com/arqonbus/arqonbus/packages/sdk-go => " + sdk + "\n"
	sum, err := os.ReadFile("go.sum")
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{"main.go": []byte(m[1]), "go.mod": []byte(gomod), "go.sum": sum} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "receiver")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("the documented receiver does not build: %v\n%s", err, out)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	secret := newWebhookSecret(t)
	var out bytes.Buffer
	var outMu sync.Mutex
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "ARQON_WEBHOOK_SECRET="+secret, "ADDR="+addr)
	cmd.Stdout = &lockedWriter{w: &out, mu: &outMu}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	delivery := `{"room":"orders","id":"m-9","offset":9,"epoch":"e1","payload":{"total":12}}`
	h := signed(t, []string{secret}, "msg_doc", time.Time{}, delivery)
	post := func(body string, h http.Header) (int, string) {
		t.Helper()
		var lastErr error
		for attempt := 0; attempt < 200; attempt++ { // up to 20 s for the receiver to listen
			req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/arqon-webhook", strings.NewReader(body))
			req.Header = h.Clone()
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				lastErr = err
				time.Sleep(100 * time.Millisecond)
				continue
			}
			b, _ := io.ReadAll(res.Body)
			_ = res.Body.Close()
			return res.StatusCode, strings.TrimSpace(string(b))
		}
		t.Fatalf("the documented receiver never answered: %v", lastErr)
		return 0, ""
	}
	if status, text := post(delivery, h); status != http.StatusNoContent || text != "" {
		t.Fatalf("a signed delivery: %d %q", status, text)
	}
	eventually(t, 5*time.Second, "the receiver's line", func() bool {
		outMu.Lock()
		defer outMu.Unlock()
		return strings.Contains(out.String(), `msg_doc orders 9 {"total":12}`)
	})
	if status, text := post(strings.Replace(delivery, "12", "13", 1), h); status != 401 || text != CodeWebhookSignatureMismatch {
		t.Fatalf("tampered: %d %q", status, text)
	}
	noID := h.Clone()
	noID.Del("webhook-id")
	if status, text := post(delivery, noID); status != 401 || text != CodeWebhookHeaderMissing {
		t.Fatalf("without webhook-id: %d %q", status, text)
	}
	old := signed(t, []string{secret}, "msg_old", time.Now().Add(-10*time.Minute), delivery)
	if status, text := post(delivery, old); status != 401 || text != CodeWebhookTimestampTooOld {
		t.Fatalf("a replay: %d %q", status, text)
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
