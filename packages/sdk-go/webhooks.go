package arqon

// Verifying (and signing) webhook deliveries the Standard Webhooks way (https://www.standardwebhooks.com/), as
// ArqonBus's op.webhook sends them: the Go twin of @arqon/sdk/webhooks (packages/sdk-ts/src/webhooks.ts) and of
// arqon.webhooks (packages/sdk-py), with the same checks, messages and codes.
//
//   - webhook-id: a unique message id, the same for every retry of one delivery (drop an id you already handled);
//   - webhook-timestamp: integer seconds since the epoch, refused when further than the tolerance from the clock;
//   - webhook-signature: space-separated "v1,<base64 of HMAC-SHA256(key, "<id>.<timestamp>.<body>")>" entries (two
//     while a secret is rotated); entries of other versions are ignored.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// DefaultWebhookTolerance is how far webhook-timestamp may be from the clock, in either direction, by default (the
// spec's five minutes).
const DefaultWebhookTolerance = 300 * time.Second

const (
	webhookSecretPrefix = "whsec_"
	webhookDigestBytes  = 32
)

var (
	webhookSeconds = regexp.MustCompile(`^[0-9]{1,15}$`)
	webhookBase64  = regexp.MustCompile(`^[A-Za-z0-9+/]*={0,2}$`)
)

// WebhookVerificationError is a refused delivery: a header is missing or malformed, its timestamp is outside the
// tolerance, or no signature matches. Nothing about it can be trusted; answer 401 (or 400) and let the sender retry.
// Err.Code is one of CodeWebhookHeaderMissing, CodeWebhookSignatureMalformed, CodeWebhookTimestampInvalid,
// CodeWebhookTimestampTooOld, CodeWebhookTimestampTooNew, CodeWebhookSignatureMismatch; CodeOf, errors.As(err,
// &*arqon.Error) and errors.Is against the ErrWebhook... sentinels see it.
type WebhookVerificationError struct {
	// Err carries the code, the message and, for some codes, Detail ("header"; "timestamp", "now", "toleranceSec").
	Err *Error
}

func (e *WebhookVerificationError) Error() string { return e.Err.Error() }

// Unwrap returns the *Error inside.
func (e *WebhookVerificationError) Unwrap() error { return e.Err }

// WebhookConfigError means the receiver itself is misconfigured: a secret that is empty or not "whsec_<base64>", or
// no secret at all (Err.Code is CodeWebhookSecretInvalid). No delivery can be verified until it is fixed: answer 500.
type WebhookConfigError struct {
	// Err carries the code and the message.
	Err *Error
}

func (e *WebhookConfigError) Error() string { return e.Err.Error() }

// Unwrap returns the *Error inside.
func (e *WebhookConfigError) Unwrap() error { return e.Err }

// Sentinels of the webhook codes, for errors.Is.
var (
	ErrWebhookHeaderMissing      = &Error{Code: CodeWebhookHeaderMissing}
	ErrWebhookSignatureMalformed = &Error{Code: CodeWebhookSignatureMalformed}
	ErrWebhookTimestampInvalid   = &Error{Code: CodeWebhookTimestampInvalid}
	ErrWebhookTimestampTooOld    = &Error{Code: CodeWebhookTimestampTooOld}
	ErrWebhookTimestampTooNew    = &Error{Code: CodeWebhookTimestampTooNew}
	ErrWebhookSignatureMismatch  = &Error{Code: CodeWebhookSignatureMismatch}
	ErrWebhookSecretInvalid      = &Error{Code: CodeWebhookSecretInvalid}
)

func refuseWebhook(code, message string, detail map[string]any) error {
	return &WebhookVerificationError{Err: &Error{Code: code, Message: message, Detail: detail}}
}

func webhookConfigError(message string) error {
	return &WebhookConfigError{Err: &Error{Code: CodeWebhookSecretInvalid, Message: message}}
}

// WebhookOptions tunes VerifyWebhook; zero values take the defaults.
type WebhookOptions struct {
	// Tolerance is how far webhook-timestamp may be from the clock in either direction, counted in whole seconds
	// (default DefaultWebhookTolerance, 5 minutes).
	Tolerance time.Duration
	// Now is the clock (tests, or a corrected clock); default time.Now.
	Now func() time.Time
}

// WebhookEvent is a verified delivery.
type WebhookEvent struct {
	// ID is webhook-id: the same for every retry of one delivery, so a receiver can drop repeats.
	ID string
	// Timestamp is webhook-timestamp, seconds since the epoch.
	Timestamp int64
	// Body is the raw body that was verified.
	Body []byte
	// Payload is the body parsed as JSON (into any, as encoding/json does), the body's text when it is not JSON,
	// nil for an empty body: what the TS SDK's event.payload holds.
	Payload any
}

// Decode unmarshals the body (JSON) into v.
func (e WebhookEvent) Decode(v any) error { return json.Unmarshal(e.Body, v) }

// Delivery parses the body as the message op.webhook POSTs (docs/security.md, "Webhook deliveries").
func (e WebhookEvent) Delivery() (WebhookDelivery, error) {
	var d WebhookDelivery
	err := json.Unmarshal(e.Body, &d)
	return d, err
}

// WebhookDelivery is the JSON body of an op.webhook delivery: one room message.
type WebhookDelivery struct {
	Room      string            `json:"room"`
	ID        string            `json:"id"`
	Offset    uint64            `json:"offset"`
	Epoch     string            `json:"epoch"`
	Timestamp int64             `json:"timestamp"` // milliseconds since the epoch
	Sender    string            `json:"sender"`
	Headers   map[string]string `json:"headers"`
	// PayloadFormat is "json" or "binary" (then Payload is a JSON string holding the base64 of the bytes).
	PayloadFormat string          `json:"payloadFormat"`
	Payload       json.RawMessage `json:"payload"`
}

// WebhookSecretFromKey returns the "whsec_<base64>" form of raw key bytes, for VerifyWebhook and SignWebhook (the TS
// SDK takes the bytes themselves; an empty key gives "whsec_", which both refuse).
func WebhookSecretFromKey(key []byte) string {
	return webhookSecretPrefix + base64.StdEncoding.EncodeToString(key)
}

// VerifyWebhook verifies a delivery and returns its id, timestamp and payload, or an error: a
// *WebhookVerificationError for a refused delivery, a *WebhookConfigError for a bad secret. secrets are
// "whsec_<base64>" strings as op.webhook.register answers them; with several (a rotation) a signature matching any
// of them is accepted. header is the request's (names matched in any case, a header given several times combined
// as HTTP does); body is the raw body exactly as received, not a re-serialized one. Signatures are compared in
// constant time (crypto/hmac.Equal).
func VerifyWebhook(secrets []string, header http.Header, body []byte, opts ...WebhookOptions) (WebhookEvent, error) {
	keys, err := webhookKeys(secrets)
	if err != nil {
		return WebhookEvent{}, err
	}
	id, err := webhookHeader(header, "webhook-id")
	if err != nil {
		return WebhookEvent{}, err
	}
	timestampText, err := webhookHeader(header, "webhook-timestamp")
	if err != nil {
		return WebhookEvent{}, err
	}
	signatureText, err := webhookHeader(header, "webhook-signature")
	if err != nil {
		return WebhookEvent{}, err
	}
	signatures, err := parseWebhookSignatures(signatureText)
	if err != nil {
		return WebhookEvent{}, err
	}

	if !webhookSeconds.MatchString(timestampText) {
		return WebhookEvent{}, refuseWebhook(CodeWebhookTimestampInvalid, "webhook-timestamp is not an integer number of seconds",
			map[string]any{"header": "webhook-timestamp"})
	}
	timestamp, _ := strconv.ParseInt(timestampText, 10, 64) // at most 15 digits: always fits
	o := first(opts)
	tolerance := int64(o.Tolerance / time.Second)
	if o.Tolerance == 0 {
		tolerance = int64(DefaultWebhookTolerance / time.Second)
	}
	clock := time.Now
	if o.Now != nil {
		clock = o.Now
	}
	now := clock().Unix()
	if now-timestamp > tolerance {
		return WebhookEvent{}, refuseWebhook(CodeWebhookTimestampTooOld,
			fmt.Sprintf("webhook-timestamp is %d s old (tolerance %d s)", now-timestamp, tolerance),
			map[string]any{"timestamp": timestamp, "now": now, "toleranceSec": tolerance})
	}
	if timestamp-now > tolerance {
		return WebhookEvent{}, refuseWebhook(CodeWebhookTimestampTooNew,
			fmt.Sprintf("webhook-timestamp is %d s ahead (tolerance %d s)", timestamp-now, tolerance),
			map[string]any{"timestamp": timestamp, "now": now, "toleranceSec": tolerance})
	}

	content := webhookContent(id, timestamp, body)
	for _, key := range keys {
		expected := webhookHMAC(key, content)
		matched := false
		for _, candidate := range signatures {
			// Every candidate is compared (no early exit), each in constant time.
			if hmac.Equal(candidate, expected) {
				matched = true
			}
		}
		if matched {
			return WebhookEvent{ID: id, Timestamp: timestamp, Body: body, Payload: webhookPayload(body)}, nil
		}
	}
	under := "the secret"
	if len(keys) > 1 {
		under = fmt.Sprintf("any of the %d secrets", len(keys))
	}
	return WebhookEvent{}, refuseWebhook(CodeWebhookSignatureMismatch, "no webhook-signature entry matches the body under "+under, nil)
}

// SignWebhook signs a delivery: it returns its webhook-id, webhook-timestamp (at, whole seconds; the zero time means
// now) and webhook-signature headers, one v1 entry per secret in the order given (the current secret first during a
// rotation). For tests, and for forwarding a delivery to another receiver under your own secret.
func SignWebhook(secrets []string, id string, at time.Time, body []byte) (http.Header, error) {
	keys, err := webhookKeys(secrets)
	if err != nil {
		return nil, err
	}
	if at.IsZero() {
		at = time.Now()
	}
	timestamp := at.Unix()
	if timestamp < 0 {
		return nil, fmt.Errorf("arqon: timestamp must be whole seconds since the epoch, got %d", timestamp)
	}
	if id == "" || strings.IndexFunc(id, unicode.IsSpace) >= 0 {
		return nil, fmt.Errorf("arqon: id must be a non-empty string without whitespace")
	}
	content := webhookContent(id, timestamp, body)
	entries := make([]string, 0, len(keys))
	for _, key := range keys {
		entries = append(entries, "v1,"+base64.StdEncoding.EncodeToString(webhookHMAC(key, content)))
	}
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(timestamp, 10))
	h.Set("webhook-signature", strings.Join(entries, " "))
	return h, nil
}

func webhookKeys(secrets []string) ([][]byte, error) {
	if len(secrets) == 0 {
		return nil, webhookConfigError("no webhook secret given")
	}
	keys := make([][]byte, 0, len(secrets))
	for _, secret := range secrets {
		if !strings.HasPrefix(secret, webhookSecretPrefix) {
			return nil, webhookConfigError(`a webhook secret string must be "whsec_" and base64 (or pass the key bytes)`)
		}
		key, ok := webhookFromBase64(secret[len(webhookSecretPrefix):])
		if !ok || len(key) == 0 {
			return nil, webhookConfigError(`the webhook secret after "whsec_" is not (non-empty) base64`)
		}
		keys = append(keys, key)
	}
	return keys, nil
}

// webhookHeader returns header name's values (names matched in any case, including map keys that are not in
// canonical form), trimmed, empty ones dropped, joined with ", " as HTTP combines a repeated header.
func webhookHeader(header http.Header, name string) (string, error) {
	var values []string
	for key, vs := range header {
		if !strings.EqualFold(key, name) {
			continue
		}
		for _, v := range vs {
			if v = strings.TrimSpace(v); v != "" {
				values = append(values, v)
			}
		}
	}
	if len(values) == 0 {
		return "", refuseWebhook(CodeWebhookHeaderMissing, "the "+name+" header is missing", map[string]any{"header": name})
	}
	return strings.Join(values, ", "), nil
}

// parseWebhookSignatures returns the 32-byte digests of the v1 entries; entries of other versions (v1a, ...) and
// malformed ones are skipped.
func parseWebhookSignatures(header string) ([][]byte, error) {
	var digests [][]byte
	// A header sent twice arrives joined with ", "; base64 holds no comma, so a trailing one is that join.
	for _, entry := range strings.Fields(header) {
		entry = strings.TrimSuffix(entry, ",")
		version, value, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue
		}
		if digest, ok := webhookFromBase64(value); ok && len(digest) == webhookDigestBytes {
			digests = append(digests, digest)
		}
	}
	if len(digests) == 0 {
		return nil, refuseWebhook(CodeWebhookSignatureMalformed, `webhook-signature holds no "v1,<base64 HMAC-SHA256>" entry`,
			map[string]any{"header": "webhook-signature"})
	}
	return digests, nil
}

func webhookContent(id string, timestamp int64, body []byte) []byte {
	prefix := id + "." + strconv.FormatInt(timestamp, 10) + "."
	content := make([]byte, 0, len(prefix)+len(body))
	return append(append(content, prefix...), body...)
}

func webhookHMAC(key, content []byte) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write(content)
	return mac.Sum(nil)
}

// webhookPayload is the body parsed as JSON, its text when it is not JSON, nil when empty.
func webhookPayload(body []byte) any {
	if len(body) == 0 {
		return nil
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return string(body)
	}
	return v
}

// webhookFromBase64 decodes standard base64 with or without padding, as the TS SDK's atob does: "=" only as one or
// two final characters of a length that is a multiple of 4, unused trailing bits ignored.
func webhookFromBase64(text string) ([]byte, bool) {
	if !webhookBase64.MatchString(text) {
		return nil, false
	}
	if len(text)%4 == 0 {
		text = strings.TrimSuffix(strings.TrimSuffix(text, "="), "=")
	}
	if strings.Contains(text, "=") || len(text)%4 == 1 {
		return nil, false
	}
	b, err := base64.RawStdEncoding.DecodeString(text)
	if err != nil {
		return nil, false
	}
	return b, true
}
