package arqon

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ServerOperation is one route of the server API (/api/v1), as the clients and `arqon api` call it.
type ServerOperation struct {
	// Name is the operation's name in every SDK (the TS SERVER_OPERATIONS key); the ServerClient method is the same
	// name with a capital first letter.
	Name string
	// Method is the HTTP method.
	Method string
	// Path has :name parameters (:tenant is the client's tenant unless given).
	Path string
	// Access: "operator", "tenant-admin" or "tenant-backend".
	Access string
	// Query lists the query parameters it reads.
	Query []string
	// Body: it takes a JSON body.
	Body bool
}

// ServerOperations lists the routes of the server API, the same table as the TS SDK's SERVER_OPERATIONS (a test
// compares them, and compares this one with the OpenAPI document the server serves).
var ServerOperations = []ServerOperation{
	{Name: "listTenants", Method: "GET", Path: "/api/v1/tenants", Access: "operator"},
	{Name: "createTenant", Method: "POST", Path: "/api/v1/tenants", Access: "operator", Body: true},
	{Name: "showTenant", Method: "GET", Path: "/api/v1/tenants/:tenant", Access: "tenant-admin"},
	{Name: "setTenant", Method: "PATCH", Path: "/api/v1/tenants/:tenant", Access: "operator", Body: true},
	{Name: "deleteTenant", Method: "DELETE", Path: "/api/v1/tenants/:tenant", Access: "operator", Query: []string{"confirm"}},
	{Name: "disableTenant", Method: "POST", Path: "/api/v1/tenants/:tenant/disable", Access: "operator"},
	{Name: "enableTenant", Method: "POST", Path: "/api/v1/tenants/:tenant/enable", Access: "operator"},
	{Name: "kick", Method: "POST", Path: "/api/v1/tenants/:tenant/kick", Access: "tenant-admin", Body: true},
	{Name: "revocations", Method: "GET", Path: "/api/v1/tenants/:tenant/revocations", Access: "tenant-admin"},
	{Name: "revoke", Method: "POST", Path: "/api/v1/tenants/:tenant/revocations", Access: "tenant-admin", Body: true},
	{Name: "unrevoke", Method: "DELETE", Path: "/api/v1/tenants/:tenant/revocations/:id", Access: "tenant-admin"},
	{Name: "audit", Method: "GET", Path: "/api/v1/tenants/:tenant/audit", Access: "tenant-admin", Query: []string{"limit", "before"}},
	{Name: "serverAudit", Method: "GET", Path: "/api/v1/audit", Access: "operator", Query: []string{"limit", "before"}},
	{Name: "casilBaseline", Method: "GET", Path: "/api/v1/casil/baseline", Access: "operator"},
	{Name: "casilBaselinePut", Method: "PUT", Path: "/api/v1/casil/baseline", Access: "operator", Body: true},
	{Name: "casilGet", Method: "GET", Path: "/api/v1/tenants/:tenant/casil", Access: "tenant-admin"},
	{Name: "casilPut", Method: "PUT", Path: "/api/v1/tenants/:tenant/casil", Access: "tenant-admin", Body: true},
	{Name: "casilDelete", Method: "DELETE", Path: "/api/v1/tenants/:tenant/casil", Access: "tenant-admin"},
	{Name: "publish", Method: "POST", Path: "/api/v1/tenants/:tenant/publish", Access: "tenant-backend", Body: true},
	{Name: "broadcast", Method: "POST", Path: "/api/v1/tenants/:tenant/broadcast", Access: "tenant-backend", Body: true},
	{Name: "history", Method: "GET", Path: "/api/v1/tenants/:tenant/rooms/:room/history", Access: "tenant-backend", Query: []string{"fromOffset", "toOffset", "fromTs", "toTs", "reverse", "limit"}},
	{Name: "rooms", Method: "GET", Path: "/api/v1/tenants/:tenant/rooms", Access: "tenant-backend", Query: []string{"prefix", "limit", "cursor"}},
	{Name: "historyRemove", Method: "DELETE", Path: "/api/v1/tenants/:tenant/rooms/:room/history", Access: "tenant-backend"},
	{Name: "presence", Method: "GET", Path: "/api/v1/tenants/:tenant/rooms/:room/presence", Access: "tenant-backend"},
	{Name: "presenceStats", Method: "GET", Path: "/api/v1/tenants/:tenant/rooms/:room/presence/stats", Access: "tenant-backend"},
	{Name: "stateGet", Method: "GET", Path: "/api/v1/tenants/:tenant/rooms/:room/state", Access: "tenant-backend"},
	{Name: "stateSet", Method: "PUT", Path: "/api/v1/tenants/:tenant/rooms/:room/state/:key", Access: "tenant-backend", Body: true},
	{Name: "disconnect", Method: "POST", Path: "/api/v1/tenants/:tenant/disconnect", Access: "tenant-backend", Body: true},
	{Name: "subscribeUser", Method: "POST", Path: "/api/v1/tenants/:tenant/subscribe", Access: "tenant-backend", Body: true},
	{Name: "unsubscribeUser", Method: "POST", Path: "/api/v1/tenants/:tenant/unsubscribe", Access: "tenant-backend", Body: true},
	{Name: "tenantInfo", Method: "GET", Path: "/api/v1/tenants/:tenant/info", Access: "tenant-admin"},
	{Name: "info", Method: "GET", Path: "/api/v1/info", Access: "operator"},
	{Name: "consoleToken", Method: "POST", Path: "/api/v1/tenants/:tenant/console-token", Access: "tenant-admin", Body: true},
}

// FindServerOperation returns the operation called name.
func FindServerOperation(name string) (ServerOperation, bool) {
	for _, op := range ServerOperations {
		if op.Name == name {
			return op, true
		}
	}
	return ServerOperation{}, false
}

// APIError is a refusal of the server API, or a request that got no answer (Status 0 with ARQ_REQUEST_TIMEOUT or
// ARQ_CONNECTION_CLOSED). It wraps an *Error, so CodeOf and errors.Is work on it.
type APIError struct {
	// Err carries the code and message.
	Err *Error
	// Status is the HTTP status, 0 when there was no answer.
	Status int
	// RetryAfter is what a 429 (or 503) asked to wait, 0 when it did not say.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	if e.Status == 0 {
		return e.Err.Error()
	}
	return fmt.Sprintf("%s (HTTP %d)", e.Err.Error(), e.Status)
}

// Unwrap returns the *Error.
func (e *APIError) Unwrap() error { return e.Err }

// Code is the error's code.
func (e *APIError) Code() string { return e.Err.Code }

// Retryable: 429, 503 and requests without an answer, besides the retryable codes.
func (e *APIError) Retryable() bool {
	return e.Status == 429 || e.Status == 503 || e.Status == 0 || e.Err.Retryable()
}

// ServerClientOptions configure a ServerClient: give OperatorKey or Token, not both.
type ServerClientOptions struct {
	// URL is the server, http(s)://host:port (a ws(s)://host:port/ws URL works too; its path is dropped).
	URL string
	// OperatorKey is sent as X-API-Key: any tenant.
	OperatorKey string
	// Token is a JWT with role "server" or "admin" of a tenant, sent as Authorization: Bearer.
	Token string
	// Tenant is the tenant of calls that name none.
	Tenant string
	// Timeout bounds one request (default 10s); the call's context can end it sooner.
	Timeout time.Duration
	// HTTPClient defaults to a client of its own (no redirects followed).
	HTTPClient *http.Client
}

// ServerClient calls the server API (/api/v1) for application backends and operators. Every route has one entry in
// ServerOperations and one method named after it. Safe for concurrent use.
type ServerClient struct {
	base    string
	headers http.Header
	tenant  string
	timeout time.Duration
	http    *http.Client
}

// NewServerClient checks the options and returns a client.
func NewServerClient(opts ServerClientOptions) (*ServerClient, error) {
	if opts.OperatorKey != "" && opts.Token != "" {
		return nil, errors.New("arqon: give OperatorKey or Token, not both")
	}
	u, err := url.Parse(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("arqon: url: %w", err)
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	case "http", "https":
	default:
		return nil, fmt.Errorf("arqon: url: %q is not http, https, ws or wss", u.Scheme)
	}
	h := http.Header{}
	h.Set("Accept", "application/json")
	if opts.OperatorKey != "" {
		h.Set("X-API-Key", opts.OperatorKey)
	}
	if opts.Token != "" {
		h.Set("Authorization", "Bearer "+opts.Token)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return &ServerClient{base: u.Scheme + "://" + u.Host, headers: h, tenant: opts.Tenant, timeout: opts.Timeout, http: hc}, nil
}

// BaseURL is http(s)://host:port of the server.
func (s *ServerClient) BaseURL() string { return s.base }

// Call makes one request and decodes the JSON answer into out (when not nil). A non-2xx answer is an *APIError with
// the server's code (docs/errors.md).
func (s *ServerClient) Call(ctx context.Context, method, path string, query url.Values, body any, out any) error {
	u := s.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var reader io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		reader = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, reader)
	if err != nil {
		return err
	}
	for k, v := range s.headers {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := s.http.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			if parent := context.Cause(ctx); parent != nil && ctx.Err() != nil && !errors.Is(parent, context.DeadlineExceeded) {
				return parent
			}
			return &APIError{Err: &Error{Code: CodeRequestTimeout, Message: fmt.Sprintf("no answer from %s within %s", s.base, s.timeout), Cause: err}}
		}
		if errors.Is(err, context.Canceled) {
			return err
		}
		return &APIError{Err: &Error{Code: CodeConnectionClosed, Message: "cannot reach " + s.base + ": " + err.Error(), Cause: err}}
	}
	defer func() { _ = res.Body.Close() }()
	text, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return &APIError{Err: &Error{Code: CodeConnectionClosed, Message: "the answer broke off: " + err.Error(), Cause: err}, Status: res.StatusCode}
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		var parsed struct {
			Error struct {
				Code    string         `json:"code"`
				Message string         `json:"message"`
				Detail  map[string]any `json:"detail"`
			} `json:"error"`
		}
		_ = json.Unmarshal(text, &parsed)
		e := &Error{Code: parsed.Error.Code, Message: parsed.Error.Message, Detail: parsed.Error.Detail}
		if e.Code == "" {
			e.Code = fmt.Sprintf("HTTP_%d", res.StatusCode)
		}
		if e.Message == "" {
			e.Message = fmt.Sprintf("%s %s answered HTTP %d", method, path, res.StatusCode)
		}
		return &APIError{Err: e, Status: res.StatusCode, RetryAfter: parseRetryAfter(res.Header.Get("Retry-After"), time.Now())}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(text, out); err != nil {
		return &APIError{Err: &Error{Code: fmt.Sprintf("HTTP_%d", res.StatusCode), Message: fmt.Sprintf("%s %s answered HTTP %d without the expected JSON", method, path, res.StatusCode), Cause: err}, Status: res.StatusCode}
	}
	return nil
}

func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(0, at.Sub(now))
	}
	return 0
}

// Tenant names the tenant of one call (else the client's Tenant).
type Tenant string

// Operation calls a route by its operation name with path parameters (tenant defaults to the client's), a query and
// a body, and decodes the answer into out.
func (s *ServerClient) Operation(ctx context.Context, name string, params map[string]string, query url.Values, body any, out any) error {
	op, ok := FindServerOperation(name)
	if !ok {
		return fmt.Errorf("arqon: no server operation %q", name)
	}
	path, err := s.path(op, params)
	if err != nil {
		return err
	}
	if body == nil && op.Body {
		body = map[string]any{}
	}
	return s.Call(ctx, op.Method, path, query, body, out)
}

func (s *ServerClient) path(op ServerOperation, params map[string]string) (string, error) {
	segments := strings.Split(op.Path, "/")
	for i, seg := range segments {
		if !strings.HasPrefix(seg, ":") {
			continue
		}
		name := seg[1:]
		v := params[name]
		if v == "" && name == "tenant" {
			v = s.tenant
		}
		if v == "" {
			return "", fmt.Errorf("arqon: the route %s needs %q", op.Path, name)
		}
		segments[i] = url.PathEscape(v)
	}
	return strings.Join(segments, "/"), nil
}

func (s *ServerClient) scoped(ctx context.Context, name string, tenant []Tenant, params map[string]string, query url.Values, body any, out any) error {
	if params == nil {
		params = map[string]string{}
	}
	if len(tenant) > 0 && tenant[0] != "" {
		params["tenant"] = string(tenant[0])
	}
	return s.Operation(ctx, name, params, query, body, out)
}

// Object is an answer the SDK does not model field by field.
type Object = map[string]any

// ---------------------------------------------------------------------------------------------------------------------
// Rooms and users (operator, admin or role "server" of the tenant)

// ServerPublishOptions tune a server-side publish.
type ServerPublishOptions struct {
	Headers        map[string]string
	IdempotencyKey string
	Tenant         Tenant
}

// ServerPublishResult is the server's answer to a publish.
type ServerPublishResult struct {
	ID        string `json:"id"`
	Room      string `json:"room"`
	Offset    uint64 `json:"offset"`
	Epoch     string `json:"epoch"`
	Duplicate bool   `json:"duplicate"`
}

func messageBody(payload any, o ServerPublishOptions) map[string]any {
	body := map[string]any{}
	if b, ok := payload.([]byte); ok {
		body["payload"] = base64.StdEncoding.EncodeToString(b)
		body["payloadFormat"] = "binary"
	} else {
		body["payload"] = payload
	}
	if o.Headers != nil {
		body["headers"] = o.Headers
	}
	if o.IdempotencyKey != "" {
		body["idempotencyKey"] = o.IdempotencyKey
	}
	return body
}

func first[T any](opts []T) T {
	var zero T
	if len(opts) > 0 {
		return opts[0]
	}
	return zero
}

// Publish publishes payload into room ([]byte as binary, anything else as JSON).
func (s *ServerClient) Publish(ctx context.Context, room string, payload any, opts ...ServerPublishOptions) (ServerPublishResult, error) {
	o := first(opts)
	body := messageBody(payload, o)
	body["room"] = room
	var out ServerPublishResult
	err := s.scoped(ctx, "publish", []Tenant{o.Tenant}, nil, nil, body, &out)
	return out, err
}

// BroadcastResult is one room's outcome of a broadcast: published, or refused on its own.
type BroadcastResult struct {
	Room      string     `json:"room"`
	ID        string     `json:"id,omitempty"`
	Offset    uint64     `json:"offset,omitempty"`
	Epoch     string     `json:"epoch,omitempty"`
	Duplicate bool       `json:"duplicate,omitempty"`
	Error     *ErrorBody `json:"error,omitempty"`
}

// ErrorBody is an error inside an answer.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Broadcast publishes one message into several rooms.
func (s *ServerClient) Broadcast(ctx context.Context, rooms []string, payload any, opts ...ServerPublishOptions) ([]BroadcastResult, error) {
	o := first(opts)
	body := messageBody(payload, o)
	body["rooms"] = rooms
	var out struct {
		Results []BroadcastResult `json:"results"`
	}
	err := s.scoped(ctx, "broadcast", []Tenant{o.Tenant}, nil, nil, body, &out)
	return out.Results, err
}

// ServerHistoryQuery selects a page of history (zero values: unbounded / the server's default).
type ServerHistoryQuery struct {
	FromOffset, ToOffset uint64
	FromTs, ToTs         int64
	Reverse              bool
	Limit                int
	Tenant               Tenant
}

// ServerHistoryMessage is one stored message; a binary payload is base64 text with PayloadFormat "binary".
type ServerHistoryMessage struct {
	ID            string            `json:"id"`
	Offset        uint64            `json:"offset"`
	Epoch         string            `json:"epoch"`
	Timestamp     int64             `json:"timestamp"`
	Sender        string            `json:"sender,omitempty"`
	Headers       map[string]string `json:"headers,omitempty"`
	Payload       json.RawMessage   `json:"payload"`
	PayloadFormat string            `json:"payloadFormat,omitempty"`
}

// ServerHistoryPage is a page of history and the room's position.
type ServerHistoryPage struct {
	Messages []ServerHistoryMessage `json:"messages"`
	Position Position               `json:"position"`
}

// History reads a page of a room's history.
func (s *ServerClient) History(ctx context.Context, room string, q ServerHistoryQuery) (ServerHistoryPage, error) {
	v := url.Values{}
	setU := func(k string, n uint64) {
		if n > 0 {
			v.Set(k, strconv.FormatUint(n, 10))
		}
	}
	setI := func(k string, n int64) {
		if n > 0 {
			v.Set(k, strconv.FormatInt(n, 10))
		}
	}
	setU("fromOffset", q.FromOffset)
	setU("toOffset", q.ToOffset)
	setI("fromTs", q.FromTs)
	setI("toTs", q.ToTs)
	setI("limit", int64(q.Limit))
	if q.Reverse {
		v.Set("reverse", "true")
	}
	var out ServerHistoryPage
	err := s.scoped(ctx, "history", []Tenant{q.Tenant}, map[string]string{"room": room}, v, nil, &out)
	return out, err
}

// ServerRoom is a room live on some node.
type ServerRoom struct {
	Room        string `json:"room"`
	Subscribers int    `json:"subscribers"`
	Nodes       int    `json:"nodes"`
}

// RoomsPage is a page of the tenant's live rooms; Next is the cursor of the next page.
type RoomsPage struct {
	Rooms   []ServerRoom `json:"rooms"`
	Next    string       `json:"next,omitempty"`
	Partial bool         `json:"partial,omitempty"`
}

// RoomsQuery selects a page of rooms.
type RoomsQuery struct {
	Prefix, Cursor string
	Limit          int
	Tenant         Tenant
}

// Rooms lists the tenant's rooms live on any node, a page at a time.
func (s *ServerClient) Rooms(ctx context.Context, q RoomsQuery) (RoomsPage, error) {
	v := url.Values{}
	if q.Prefix != "" {
		v.Set("prefix", q.Prefix)
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var out RoomsPage
	err := s.scoped(ctx, "rooms", []Tenant{q.Tenant}, nil, v, nil, &out)
	return out, err
}

// HistoryRemove removes a room's history (the room starts over in a new epoch).
func (s *ServerClient) HistoryRemove(ctx context.Context, room string, tenant ...Tenant) (Object, error) {
	var out Object
	err := s.scoped(ctx, "historyRemove", tenant, map[string]string{"room": room}, nil, nil, &out)
	return out, err
}

// ServerPresenceMember is one presence member.
type ServerPresenceMember struct {
	ClientID string          `json:"clientId"`
	User     string          `json:"user"`
	Info     json.RawMessage `json:"info,omitempty"`
	JoinedAt int64           `json:"joinedAt,omitempty"`
}

// Presence lists a room's presence members.
func (s *ServerClient) Presence(ctx context.Context, room string, tenant ...Tenant) ([]ServerPresenceMember, error) {
	var out struct {
		Members []ServerPresenceMember `json:"members"`
	}
	err := s.scoped(ctx, "presence", tenant, map[string]string{"room": room}, nil, nil, &out)
	return out.Members, err
}

// PresenceStats counts a room's presence.
type PresenceStats struct {
	Clients int `json:"clients"`
	Users   int `json:"users"`
}

// PresenceStats answers a room's presence counts.
func (s *ServerClient) PresenceStats(ctx context.Context, room string, tenant ...Tenant) (PresenceStats, error) {
	var out PresenceStats
	err := s.scoped(ctx, "presenceStats", tenant, map[string]string{"room": room}, nil, nil, &out)
	return out, err
}

// ServerStateEntry is one room state entry.
type ServerStateEntry struct {
	Key       string          `json:"key"`
	Value     json.RawMessage `json:"value"`
	Version   uint64          `json:"version"`
	UpdatedAt int64           `json:"updatedAt,omitempty"`
}

// StateGet reads a room's state entries.
func (s *ServerClient) StateGet(ctx context.Context, room string, tenant ...Tenant) ([]ServerStateEntry, error) {
	var out struct {
		Entries []ServerStateEntry `json:"entries"`
	}
	err := s.scoped(ctx, "stateGet", tenant, map[string]string{"room": room}, nil, nil, &out)
	return out.Entries, err
}

// StateSetOptions: ExpectedVersion makes the write compare-and-set (409 ARQ_STATE_CONFLICT otherwise).
type StateSetOptions struct {
	ExpectedVersion *uint64
	Tenant          Tenant
}

// StateSet writes a room state key; it returns the new version.
func (s *ServerClient) StateSet(ctx context.Context, room, key string, value any, opts ...StateSetOptions) (uint64, error) {
	o := first(opts)
	body := map[string]any{"value": value}
	if o.ExpectedVersion != nil {
		body["expectedVersion"] = *o.ExpectedVersion
	}
	var out struct {
		Version uint64 `json:"version"`
	}
	err := s.scoped(ctx, "stateSet", []Tenant{o.Tenant}, map[string]string{"room": room, "key": key}, nil, body, &out)
	return out.Version, err
}

// ConnectionSelector picks connections: a user's, one client's, or (neither) every connection of the tenant.
type ConnectionSelector struct {
	User   string
	Client string
	Tenant Tenant
}

func (c ConnectionSelector) body() map[string]any {
	b := map[string]any{}
	if c.User != "" {
		b["user"] = c.User
	}
	if c.Client != "" {
		b["client"] = c.Client
	}
	return b
}

// Disconnect closes connections with code (0: the server's default) and reason; it returns how many closed here.
func (s *ServerClient) Disconnect(ctx context.Context, sel ConnectionSelector, code int, reason string) (int, error) {
	body := sel.body()
	if code != 0 {
		body["code"] = code
	}
	if reason != "" {
		body["reason"] = reason
	}
	var out struct {
		ClosedHere int `json:"closedHere"`
	}
	err := s.scoped(ctx, "disconnect", []Tenant{sel.Tenant}, nil, nil, body, &out)
	return out.ClosedHere, err
}

// SubscribeUser subscribes a user's live connections (or one client's) to a room; it returns how many here.
func (s *ServerClient) SubscribeUser(ctx context.Context, user, room string, sel ...ConnectionSelector) (int, error) {
	o := first(sel)
	body := map[string]any{"user": user, "room": room}
	if o.Client != "" {
		body["client"] = o.Client
	}
	var out struct {
		SubscribedHere int `json:"subscribedHere"`
	}
	err := s.scoped(ctx, "subscribeUser", []Tenant{o.Tenant}, nil, nil, body, &out)
	return out.SubscribedHere, err
}

// UnsubscribeUser ends a user's subscriptions to a room; it returns how many here.
func (s *ServerClient) UnsubscribeUser(ctx context.Context, user, room string, sel ...ConnectionSelector) (int, error) {
	o := first(sel)
	body := map[string]any{"user": user, "room": room}
	if o.Client != "" {
		body["client"] = o.Client
	}
	var out struct {
		UnsubscribedHere int `json:"unsubscribedHere"`
	}
	err := s.scoped(ctx, "unsubscribeUser", []Tenant{o.Tenant}, nil, nil, body, &out)
	return out.UnsubscribedHere, err
}

// TenantInfo answers a tenant's connections and subscriptions per node.
func (s *ServerClient) TenantInfo(ctx context.Context, tenant ...Tenant) (Object, error) {
	var out Object
	err := s.scoped(ctx, "tenantInfo", tenant, nil, nil, nil, &out)
	return out, err
}

// ConsoleToken mints a short-lived (at most 15 minutes) token of the tenant for the web console's WebSocket: access
// "read" (the default when empty) may subscribe and see presence, "admin" is a role "admin" token. The answer holds
// token, tenant, sub, access and expiresAt.
func (s *ServerClient) ConsoleToken(ctx context.Context, access string, tenant ...Tenant) (Object, error) {
	body := map[string]any{}
	if access != "" {
		body["access"] = access
	}
	var out Object
	err := s.scoped(ctx, "consoleToken", tenant, nil, nil, body, &out)
	return out, err
}

// Info answers this node and every other node of the cluster (operator).
func (s *ServerClient) Info(ctx context.Context) (Object, error) {
	var out Object
	err := s.Operation(ctx, "info", nil, nil, nil, &out)
	return out, err
}

// ---------------------------------------------------------------------------------------------------------------------
// Tenant administration (operator; show, kick, revocations, audit and CASIL also an admin of the tenant)

// ListTenants answers the tenancy mode and the tenant records.
func (s *ServerClient) ListTenants(ctx context.Context) (Object, error) {
	var out Object
	err := s.Operation(ctx, "listTenants", nil, nil, nil, &out)
	return out, err
}

// TenantInput is the body of CreateTenant and SetTenant.
type TenantInput struct {
	Limits      map[string]any `json:"limits,omitempty"`
	Description string         `json:"description,omitempty"`
	Disabled    bool           `json:"disabled,omitempty"`
}

// CreateTenant creates a tenant record.
func (s *ServerClient) CreateTenant(ctx context.Context, name string, in TenantInput) (Object, error) {
	body := map[string]any{"name": name}
	if in.Limits != nil {
		body["limits"] = in.Limits
	}
	if in.Description != "" {
		body["description"] = in.Description
	}
	if in.Disabled {
		body["disabled"] = true
	}
	var out Object
	err := s.Operation(ctx, "createTenant", nil, nil, body, &out)
	return out, err
}

// ShowTenant answers a tenant's record, limits in force, usage and revocations.
func (s *ServerClient) ShowTenant(ctx context.Context, tenant ...Tenant) (Object, error) {
	var out Object
	err := s.scoped(ctx, "showTenant", tenant, nil, nil, nil, &out)
	return out, err
}

// SetTenant changes a tenant's limits (a nil value removes one) or description.
func (s *ServerClient) SetTenant(ctx context.Context, tenant Tenant, in TenantInput) (Object, error) {
	body := map[string]any{}
	if in.Limits != nil {
		body["limits"] = in.Limits
	}
	if in.Description != "" {
		body["description"] = in.Description
	}
	var out Object
	err := s.scoped(ctx, "setTenant", []Tenant{tenant}, nil, nil, body, &out)
	return out, err
}

// DeleteTenant deletes a tenant and its data; confirm repeats the tenant's name.
func (s *ServerClient) DeleteTenant(ctx context.Context, tenant Tenant, confirm string) (Object, error) {
	var out Object
	err := s.scoped(ctx, "deleteTenant", []Tenant{tenant}, nil, url.Values{"confirm": {confirm}}, nil, &out)
	return out, err
}

// DisableTenant disables a tenant: its connections close with 4503.
func (s *ServerClient) DisableTenant(ctx context.Context, tenant Tenant) (Object, error) {
	var out Object
	err := s.scoped(ctx, "disableTenant", []Tenant{tenant}, nil, nil, nil, &out)
	return out, err
}

// EnableTenant enables a disabled tenant.
func (s *ServerClient) EnableTenant(ctx context.Context, tenant Tenant) (Object, error) {
	var out Object
	err := s.scoped(ctx, "enableTenant", []Tenant{tenant}, nil, nil, nil, &out)
	return out, err
}

// Kick closes connections with 4504; it returns how many closed here.
func (s *ServerClient) Kick(ctx context.Context, sel ConnectionSelector) (int, error) {
	var out struct {
		ClosedHere int `json:"closedHere"`
	}
	err := s.scoped(ctx, "kick", []Tenant{sel.Tenant}, nil, nil, sel.body(), &out)
	return out.ClosedHere, err
}

// Revocations lists a tenant's revocation rules.
func (s *ServerClient) Revocations(ctx context.Context, tenant ...Tenant) ([]Object, error) {
	var out struct {
		Revocations []Object `json:"revocations"`
	}
	err := s.scoped(ctx, "revocations", tenant, nil, nil, nil, &out)
	return out.Revocations, err
}

// RevocationRule is the body of Revoke: tokens of User, with ID Jti, or issued before Before (epoch ms), for TTLMs.
type RevocationRule struct {
	User   string `json:"user,omitempty"`
	Jti    string `json:"jti,omitempty"`
	Before int64  `json:"before,omitempty"`
	TTLMs  int64  `json:"ttlMs,omitempty"`
	Tenant Tenant `json:"-"`
}

// Revoke refuses tokens matching the rule (live connections holding one close with 4500).
func (s *ServerClient) Revoke(ctx context.Context, rule RevocationRule) (Object, error) {
	var out Object
	err := s.scoped(ctx, "revoke", []Tenant{rule.Tenant}, nil, nil, rule, &out)
	return out, err
}

// Unrevoke lifts a revocation rule.
func (s *ServerClient) Unrevoke(ctx context.Context, id string, tenant ...Tenant) (Object, error) {
	var out Object
	err := s.scoped(ctx, "unrevoke", tenant, map[string]string{"id": id}, nil, nil, &out)
	return out, err
}

// AuditQuery pages an audit trail (newest first; Before is the Next of the previous page).
type AuditQuery struct {
	Limit  int
	Before int64
	Tenant Tenant
}

func (q AuditQuery) values() url.Values {
	v := url.Values{}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Before > 0 {
		v.Set("before", strconv.FormatInt(q.Before, 10))
	}
	return v
}

// Audit answers a page of a tenant's audit trail.
func (s *ServerClient) Audit(ctx context.Context, q AuditQuery) (Object, error) {
	var out Object
	err := s.scoped(ctx, "audit", []Tenant{q.Tenant}, nil, q.values(), nil, &out)
	return out, err
}

// ServerAudit answers a page of the server's audit trail (operator).
func (s *ServerClient) ServerAudit(ctx context.Context, q AuditQuery) (Object, error) {
	var out Object
	err := s.Operation(ctx, "serverAudit", nil, q.values(), nil, &out)
	return out, err
}

// CasilBaseline answers the CASIL baseline and its counters (operator).
func (s *ServerClient) CasilBaseline(ctx context.Context) (Object, error) {
	var out Object
	err := s.Operation(ctx, "casilBaseline", nil, nil, nil, &out)
	return out, err
}

// CasilReload is a CASIL reload (docs/casil.md): exactly one of Policy, Mode, Clear (tenant layers only).
type CasilReload struct {
	Policy any    `json:"policy,omitempty"`
	Mode   string `json:"mode,omitempty"`
	Clear  bool   `json:"clear,omitempty"`
	DryRun bool   `json:"dryRun,omitempty"`
	Tenant Tenant `json:"-"`
}

// CasilBaselinePut reloads the CASIL baseline (operator).
func (s *ServerClient) CasilBaselinePut(ctx context.Context, reload CasilReload) (Object, error) {
	var out Object
	err := s.Operation(ctx, "casilBaselinePut", nil, nil, reload, &out)
	return out, err
}

// CasilGet answers a tenant's CASIL layer.
func (s *ServerClient) CasilGet(ctx context.Context, tenant ...Tenant) (Object, error) {
	var out Object
	err := s.scoped(ctx, "casilGet", tenant, nil, nil, nil, &out)
	return out, err
}

// CasilPut changes a tenant's CASIL layer.
func (s *ServerClient) CasilPut(ctx context.Context, reload CasilReload) (Object, error) {
	var out Object
	err := s.scoped(ctx, "casilPut", []Tenant{reload.Tenant}, nil, nil, reload, &out)
	return out, err
}

// CasilDelete clears a tenant's CASIL layer.
func (s *ServerClient) CasilDelete(ctx context.Context, tenant ...Tenant) (Object, error) {
	var out Object
	err := s.scoped(ctx, "casilDelete", tenant, nil, nil, nil, &out)
	return out, err
}
