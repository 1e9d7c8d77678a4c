package arqon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/arqonbus/arqonbus/packages/sdk-go/arqonpb"
)

// DefaultURL is the gateway a client connects to when given none: this machine, the server's default port.
const DefaultURL = "ws://127.0.0.1:9100/ws"

// TokenProvider returns a fresh JWT. It is called before the first connection when Options.Token is empty, before
// the token expires (to refresh it on the live connection with an `auth` frame), and after the server refused an
// expired token.
type TokenProvider func(ctx context.Context) (string, error)

// ReconnectOptions is the reconnect policy: exponential backoff with full jitter.
type ReconnectOptions struct {
	// Disabled: never reconnect.
	Disabled bool
	// InitialDelay is the ceiling of the first delay; it doubles per attempt. Default 500ms.
	InitialDelay time.Duration
	// MaxDelay bounds every delay. Default 10s.
	MaxDelay time.Duration
	// MaxAttempts gives up (status closed) after this many failed attempts in a row; 0 = never give up.
	MaxAttempts int
}

// HeartbeatOptions tune dead-connection detection: after Interval without any frame from the server the client sends
// `ping`; when nothing arrives within Timeout after it, the connection is dropped (4001) and the client reconnects.
// Zero values take the server's welcome limits (pingIntervalMs, pongTimeoutMs), else 25s and 10s.
type HeartbeatOptions struct {
	Disabled bool
	Interval time.Duration
	Timeout  time.Duration
}

// Options configure a Client. Token or TokenProvider is required.
type Options struct {
	// Token is a JWT. Use TokenProvider instead when tokens expire and can be renewed.
	Token string
	// TokenProvider returns a fresh JWT (see TokenProvider).
	TokenProvider TokenProvider
	// Codec is the outbound wire format: JSONCodec (default) or ProtobufCodec.
	Codec Codec
	// Protocol is the wire protocol version to ask for: "1.1" (default, compact message frames) or "1.0". Messages
	// reach the application the same either way.
	Protocol string
	// TokenTransport is how the token travels: "header" (Authorization: Bearer, the default), "protocol"
	// (bearer.<token> in the subprotocol list) or "query" (?token=).
	TokenTransport string
	// Reconnect is the reconnect policy.
	Reconnect ReconnectOptions
	// RequestTimeout fails a request without a reply after this long with ARQ_REQUEST_TIMEOUT. Default 10s.
	RequestTimeout time.Duration
	// ConnectTimeout bounds one connection attempt (token provider, handshake). Default 10s.
	ConnectTimeout time.Duration
	// TokenRefreshMargin refreshes the token this long before it expires (at most half its remaining life). Default 30s.
	TokenRefreshMargin time.Duration
	// Heartbeat tunes dead-connection detection.
	Heartbeat HeartbeatOptions
	// HTTPClient is used for the WebSocket handshake. Default http.DefaultClient.
	HTTPClient *http.Client
	// Handlers. They run one at a time, in order, on one goroutine of the client (never while it holds a lock), so
	// they may call the client; a handler that blocks holds up the ones after it.

	// OnStatus is called at every change of Status.
	OnStatus func(Status)
	// OnConnected is called at every welcome (Reconnected tells a renewal).
	OnConnected func(Connected)
	// OnError receives failures that belong to no request: undecodable frames, errors without a request id, token
	// refresh failures, automatic re-subscriptions the server refused.
	OnError func(error)
	// OnToken is called after a token refresh on the live connection, with the new expiry (epoch ms, 0 = none).
	OnToken func(expiresAt int64)
	// OnServerSubscribed is called when the application's backend subscribed this connection to a room (server API);
	// set the room's handler with room.OnMessage in it to miss none. Such a subscription ends with the connection.
	OnServerSubscribed func(*Room)
}

type reply struct {
	frame *arqonpb.Frame
	err   error
}

type pending struct {
	frame   *arqonpb.Frame
	onReply func(*arqonpb.Frame) // runs in the read loop, with c.mu held, before later frames
	ch      chan reply
	sent    bool
}

// conn is one WebSocket connection and the goroutines serving it.
type conn struct {
	ws       *websocket.Conn
	ctx      context.Context
	cancel   context.CancelFunc
	outMu    sync.Mutex
	out      [][]byte
	outBin   []bool
	outReady chan struct{}
	dropCode atomic.Int32 // set when the client drops the connection itself (heartbeat: 4001)
	lastRecv atomic.Int64 // unix ms of the last frame received
}

// Client is a connection to an ArqonBus gateway that stays up: it reconnects with backoff, renews subscriptions with
// the last seen position so missed messages are recovered, and refreshes expiring tokens in place. All methods are
// safe for concurrent use; every call takes a context.Context.
type Client struct {
	url  string
	opts Options

	mu            sync.Mutex
	status        Status
	conn          *conn
	welcomed      bool
	everConnected bool
	wireProtocol  string
	clientID      string
	attempt       int
	seq           uint64
	pending       map[string]*pending
	rooms         map[string]*Room
	globs         []*Room // the rooms whose name is a pattern (wildcard subscriptions)
	waiters       []chan error
	token         string
	needFresh     bool
	authRetried   bool
	closing       bool
	stop          context.CancelFunc // cancels the run loop
	runDone       chan struct{}
	events        *dispatcher
	refreshNow    chan struct{}
}

// New creates a client for url (DefaultURL when empty) without connecting; call Connect. It returns an *Error:
// ARQ_AUTH_MISSING without Token and TokenProvider, ARQ_PROTOCOL_UNSUPPORTED for a protocol it does not speak.
func New(rawURL string, opts Options) (*Client, error) {
	if rawURL == "" {
		rawURL = DefaultURL
	}
	if _, err := url.Parse(rawURL); err != nil {
		return nil, newError(CodeFrameWrongType, "bad URL: "+err.Error())
	}
	if opts.Token == "" && opts.TokenProvider == nil {
		return nil, newError(CodeAuthMissing, "arqon.New needs Options.Token or Options.TokenProvider")
	}
	if opts.Protocol == "" {
		opts.Protocol = "1.1"
	}
	if opts.Protocol != "1.0" && opts.Protocol != "1.1" {
		return nil, newError(CodeProtocolUnsupported, fmt.Sprintf("protocol %q is not supported; use \"1.0\" or \"1.1\"", opts.Protocol))
	}
	switch opts.TokenTransport {
	case "":
		opts.TokenTransport = "header"
	case "header", "protocol", "query":
	default:
		return nil, newError(CodeFrameWrongType, "TokenTransport must be header, protocol or query")
	}
	if opts.Codec == nil {
		opts.Codec = JSONCodec
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 10 * time.Second
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 10 * time.Second
	}
	if opts.TokenRefreshMargin <= 0 {
		opts.TokenRefreshMargin = 30 * time.Second
	}
	if opts.Reconnect.InitialDelay <= 0 {
		opts.Reconnect.InitialDelay = 500 * time.Millisecond
	}
	if opts.Reconnect.MaxDelay <= 0 {
		opts.Reconnect.MaxDelay = 10 * time.Second
	}
	if opts.Reconnect.MaxDelay < opts.Reconnect.InitialDelay {
		opts.Reconnect.MaxDelay = opts.Reconnect.InitialDelay
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = http.DefaultClient
	}
	return &Client{
		url:          rawURL,
		opts:         opts,
		status:       Status{Kind: StatusIdle},
		wireProtocol: "1.0",
		pending:      map[string]*pending{},
		rooms:        map[string]*Room{},
		token:        opts.Token,
		needFresh:    opts.Token == "",
	}, nil
}

// URL is the gateway URL as given to New.
func (c *Client) URL() string { return c.url }

// Status is the current state.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

// Connected reports whether the connection is welcomed (between welcome and its loss).
func (c *Client) Connected() bool { return c.Status().Kind == StatusConnected }

// ClientID is this connection's id as the server assigned it ("" when not connected).
func (c *Client) ClientID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.status.Kind != StatusConnected {
		return ""
	}
	return c.clientID
}

// Protocol is the wire protocol version the last welcome put in force ("1.0" until then).
func (c *Client) Protocol() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wireProtocol
}

// BackoffDelay is the delay before reconnect attempt n (1-based): uniformly random in [0, cap) with
// cap = min(MaxDelay, InitialDelay * 2^(n-1)) ("full jitter").
func BackoffDelay(attempt int, r ReconnectOptions) time.Duration {
	ceiling := r.InitialDelay
	for i := 1; i < attempt && ceiling < r.MaxDelay; i++ {
		ceiling *= 2
	}
	ceiling = min(ceiling, r.MaxDelay)
	if ceiling <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(ceiling)))
}

// Connect opens the connection and returns at the server's welcome. Failed attempts are retried per the reconnect
// policy; it returns ARQ_CLIENT_CLOSED (the close code in Detail["code"]) when the client closes before connecting
// (a refused token: 4500), or ctx's error (the client keeps trying in the background until Close).
func (c *Client) Connect(ctx context.Context) error {
	c.mu.Lock()
	if c.status.Kind == StatusConnected {
		c.mu.Unlock()
		return nil
	}
	ch := make(chan error, 1)
	c.waiters = append(c.waiters, ch)
	if c.status.Kind == StatusIdle || c.status.Kind == StatusClosed {
		if c.runDone != nil {
			// A previous run is finishing (its closed event is out); wait for it outside the lock.
			done := c.runDone
			c.mu.Unlock()
			select {
			case <-done:
			case <-ctx.Done():
				return ctx.Err()
			}
			c.mu.Lock()
		}
		if c.status.Kind == StatusIdle || c.status.Kind == StatusClosed {
			c.start()
		}
	}
	c.mu.Unlock()
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		c.mu.Lock()
		for i, w := range c.waiters {
			if w == ch {
				c.waiters = append(c.waiters[:i], c.waiters[i+1:]...)
				break
			}
		}
		c.mu.Unlock()
		return ctx.Err()
	}
}

// start launches the run loop; c.mu held.
func (c *Client) start() {
	c.attempt = 0
	c.authRetried = false
	c.closing = false
	runCtx, stop := context.WithCancel(context.Background())
	c.stop = stop
	c.runDone = make(chan struct{})
	c.events = newDispatcher()
	c.refreshNow = make(chan struct{}, 1)
	// Connecting from now on (the run loop reports it): a Connect or request made meanwhile waits for the welcome.
	c.status = Status{Kind: StatusConnecting}
	go c.run(runCtx, c.runDone, c.events)
}

// Close closes the connection with 1000 and stops reconnecting; pending and later requests fail with
// ARQ_CLIENT_CLOSED. It returns once every goroutine of the client has ended (handlers already queued run first), or
// with ctx's error. Do not call it from a handler without `go`: it waits for the handlers to finish.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	done := c.runDone
	events := c.events
	if done == nil {
		c.status = Status{Kind: StatusClosed, Code: CloseNormal, Reason: "client closed"}
		c.mu.Unlock()
		return nil
	}
	c.closing = true
	stop := c.stop
	cn := c.conn
	c.mu.Unlock()
	if cn != nil {
		// Closes the socket with 1000: the read loop sees the close and ends the run (bounded by the library's 5s).
		_ = cn.ws.Close(websocket.StatusNormalClosure, "client closed")
	} else {
		stop() // connecting or waiting to reconnect: give up at once
	}
	select {
	case <-done:
	case <-ctx.Done():
		stop()
		return ctx.Err()
	}
	stop()
	select {
	case <-events.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// Room returns the room called name (the same *Room on every call).
func (c *Client) Room(name string) *Room {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.roomLocked(name)
}

func (c *Client) roomLocked(name string) *Room {
	r := c.rooms[name]
	if r == nil {
		r = newRoom(c, name)
		c.rooms[name] = r
		if r.glob != nil {
			c.globs = append(c.globs, r)
		}
	}
	return r
}

// Command runs a server command (op.<name>.<verb>) with args (any JSON value, nil for none) and returns its result as
// JSON text. A failure is an *Error with the server's code (AUTHORIZATION_ERROR, VALIDATION_ERROR, NOT_FOUND, ...).
func (c *Client) Command(ctx context.Context, name string, args any) (json.RawMessage, error) {
	f := &arqonpb.Frame{Type: arqonpb.FrameType_FRAME_TYPE_COMMAND, Command: name}
	if args != nil {
		b, err := jsonBytes(args)
		if err != nil {
			return nil, err
		}
		f.Args = b
	}
	r, err := c.request(ctx, f, nil)
	if err != nil {
		return nil, err
	}
	if r.Status == "error" || r.Error != nil {
		info := r.Error
		if info == nil {
			info = &arqonpb.ErrorInfo{Code: CodeCommandInternalError, Message: "command failed"}
		}
		return nil, errorFromInfo(info, r.RequestId)
	}
	if len(r.Payload) == 0 {
		return nil, nil
	}
	return json.RawMessage(r.Payload), nil
}

// RPC asks the application backend to run method with data (the server's rpc proxy hook) and returns the data it
// answered as JSON text. Errors: ARQ_PROXY_DENIED, ARQ_PROXY_UNAVAILABLE, ARQ_FEATURE_DISABLED (no rpc hook), ...
func (c *Client) RPC(ctx context.Context, method string, data any) (json.RawMessage, error) {
	b, err := jsonBytes(data)
	if err != nil {
		return nil, err
	}
	r, err := c.request(ctx, &arqonpb.Frame{Type: arqonpb.FrameType_FRAME_TYPE_RPC, Method: method, Data: b}, nil)
	if err != nil {
		return nil, err
	}
	if len(r.Data) == 0 {
		return json.RawMessage("null"), nil
	}
	return json.RawMessage(r.Data), nil
}

// Ping makes a round trip to the server and returns how long it took.
func (c *Client) Ping(ctx context.Context) (time.Duration, error) {
	started := time.Now()
	if _, err := c.request(ctx, &arqonpb.Frame{Type: arqonpb.FrameType_FRAME_TYPE_PING}, nil); err != nil {
		return 0, err
	}
	return time.Since(started), nil
}

// Refresh replaces the connection's token without reconnecting (an `auth` frame): with token, or, when token is "",
// with one from the TokenProvider. It returns the new expiry (epoch ms, 0 = none). The token is also used for later
// reconnects. Errors: ARQ_AUTH_INVALID, ARQ_AUTH_EXPIRED, ARQ_AUTH_MISMATCH, ARQ_AUTH_REVOKED, ...
func (c *Client) Refresh(ctx context.Context, token string) (int64, error) {
	if token == "" {
		if c.opts.TokenProvider == nil {
			return 0, newError(CodeAuthMissing, "Refresh needs a token or Options.TokenProvider")
		}
		t, err := c.opts.TokenProvider(ctx)
		if err != nil {
			return 0, &Error{Code: CodeAuthMissing, Message: "the token provider failed: " + err.Error(), Cause: err}
		}
		token = t
	}
	r, err := c.request(ctx, &arqonpb.Frame{Type: arqonpb.FrameType_FRAME_TYPE_AUTH, Token: token}, nil)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	c.token = token
	c.needFresh = false
	c.mu.Unlock()
	c.emit(func() {
		if c.opts.OnToken != nil {
			c.opts.OnToken(r.ExpiresAt)
		}
	})
	return r.ExpiresAt, nil
}

// -----------------------------------------------------------------------------------------------------------------
// Requests

func jsonBytes(v any) ([]byte, error) {
	switch t := v.(type) {
	case json.RawMessage:
		if !json.Valid(t) {
			return nil, newError(CodeFrameWrongType, "the value is not valid JSON")
		}
		return t, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, &Error{Code: CodeFrameWrongType, Message: "the value cannot be encoded as JSON: " + err.Error(), Cause: err}
	}
	return b, nil
}

func errorFromInfo(info *arqonpb.ErrorInfo, requestID string) *Error {
	e := &Error{Code: info.Code, Message: info.Message, RequestID: requestID}
	if info.Retryable {
		t := true
		e.ServerRetryable = &t
	}
	if e.Code == "" {
		e.Code = CodeInternal
	}
	return e
}

// request sends a frame and waits for its reply; queued while (re)connecting, failed once closed.
func (c *Client) request(ctx context.Context, f *arqonpb.Frame, onReply func(*arqonpb.Frame)) (*arqonpb.Frame, error) {
	c.mu.Lock()
	switch c.status.Kind {
	case StatusIdle:
		c.mu.Unlock()
		return nil, newError(CodeClientClosed, "not connected: call Connect first")
	case StatusClosed:
		c.mu.Unlock()
		return nil, newError(CodeClientClosed, "the client is closed")
	}
	c.seq++
	id := strconv.FormatUint(c.seq, 10)
	f.RequestId = id
	p := &pending{frame: f, onReply: onReply, ch: make(chan reply, 1)}
	c.pending[id] = p
	if c.welcomed {
		c.transmitLocked(p)
	}
	c.mu.Unlock()
	timer := time.NewTimer(c.opts.RequestTimeout)
	defer timer.Stop()
	select {
	case r := <-p.ch:
		return r.frame, r.err
	case <-timer.C:
		c.forget(id)
		return nil, &Error{Code: CodeRequestTimeout, Message: fmt.Sprintf("no reply to %s within %s", FrameTypeName(f.Type), c.opts.RequestTimeout), RequestID: id}
	case <-ctx.Done():
		c.forget(id)
		return nil, ctx.Err()
	}
}

func (c *Client) forget(id string) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// transmitLocked queues a pending request on the current connection.
func (c *Client) transmitLocked(p *pending) {
	p.sent = c.sendLocked(p.frame)
}

// sendLocked queues a frame on the current connection's writer (order kept); false without a connection.
func (c *Client) sendLocked(f *arqonpb.Frame) bool {
	cn := c.conn
	if cn == nil {
		return false
	}
	data, binary, err := c.opts.Codec.Encode(f)
	if err != nil {
		if p := c.pending[f.RequestId]; p != nil && f.RequestId != "" {
			delete(c.pending, f.RequestId)
			p.ch <- reply{err: err}
		}
		return true
	}
	cn.outMu.Lock()
	cn.out = append(cn.out, data)
	cn.outBin = append(cn.outBin, binary)
	cn.outMu.Unlock()
	select {
	case cn.outReady <- struct{}{}:
	default:
	}
	return true
}

// settleLocked resolves a pending request with a frame (or its error).
func (c *Client) settleLocked(f *arqonpb.Frame) bool {
	p := c.pending[f.RequestId]
	if p == nil {
		return false
	}
	delete(c.pending, f.RequestId)
	if f.Type == arqonpb.FrameType_FRAME_TYPE_ERROR {
		info := f.Error
		if info == nil {
			info = &arqonpb.ErrorInfo{Code: CodeInternal, Message: "request failed"}
		}
		if info.Code == CodeAuthExpired {
			c.refreshSoonLocked()
		}
		p.ch <- reply{err: errorFromInfo(info, f.RequestId)}
		return true
	}
	if p.onReply != nil {
		p.onReply(f)
	}
	p.ch <- reply{frame: f}
	return true
}

// -----------------------------------------------------------------------------------------------------------------
// Events

func (c *Client) emit(fn func()) {
	c.mu.Lock()
	d := c.events
	c.mu.Unlock()
	if d != nil {
		d.push(fn)
	}
}

// emitLocked queues a handler call; c.mu held.
func (c *Client) emitLocked(fn func()) {
	if c.events != nil {
		c.events.push(fn)
	}
}

func (c *Client) setStatusLocked(s Status) {
	c.status = s
	if h := c.opts.OnStatus; h != nil {
		c.emitLocked(func() { h(s) })
	}
}

func (c *Client) reportLocked(err error) {
	if h := c.opts.OnError; h != nil {
		c.emitLocked(func() { h(err) })
	}
}

// dispatcher runs handler calls one at a time, in order, on its own goroutine; push never blocks.
type dispatcher struct {
	mu     sync.Mutex
	queue  []func()
	wake   chan struct{}
	closed bool
	done   chan struct{}
}

func newDispatcher() *dispatcher {
	d := &dispatcher{wake: make(chan struct{}, 1), done: make(chan struct{})}
	go d.loop()
	return d
}

func (d *dispatcher) push(fn func()) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.queue = append(d.queue, fn)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// finish lets the queued calls run, then ends the goroutine.
func (d *dispatcher) finish() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *dispatcher) loop() {
	defer close(d.done)
	for {
		d.mu.Lock()
		queue := d.queue
		d.queue = nil
		closed := d.closed
		d.mu.Unlock()
		for _, fn := range queue {
			fn()
		}
		if len(queue) > 0 {
			continue
		}
		if closed {
			return
		}
		<-d.wake
	}
}

// -----------------------------------------------------------------------------------------------------------------
// Connection lifecycle

func (c *Client) run(ctx context.Context, done chan struct{}, events *dispatcher) {
	defer func() {
		events.finish()
		close(done)
	}()
	for {
		code, reason, wasConnected, forceRetry := c.connectOnce(ctx)
		c.mu.Lock()
		if c.closing || ctx.Err() != nil {
			if wasConnected {
				c.setStatusLocked(Status{Kind: StatusDisconnected, Code: code, Reason: reason})
			}
			c.terminateLocked(CloseNormal, "client closed")
			c.mu.Unlock()
			return
		}
		retry := forceRetry || ShouldReconnect(code)
		if code == CloseTokenExpired {
			if c.opts.TokenProvider != nil {
				c.needFresh = true
			} else {
				retry = false
			}
		}
		if c.opts.Reconnect.Disabled {
			retry = false
		}
		if retry && c.opts.Reconnect.MaxAttempts > 0 && c.attempt >= c.opts.Reconnect.MaxAttempts {
			retry = false
		}
		if wasConnected {
			c.setStatusLocked(Status{Kind: StatusDisconnected, Code: code, Reason: reason, WillReconnect: retry})
		}
		if !retry {
			why := reason
			if !wasConnected && c.attempt > 0 {
				why = fmt.Sprintf("%s (gave up after %d attempts)", reason, c.attempt)
			}
			c.terminateLocked(code, why)
			c.mu.Unlock()
			return
		}
		c.attempt++
		delay := BackoffDelay(c.attempt, c.opts.Reconnect)
		c.setStatusLocked(Status{Kind: StatusReconnecting, Attempt: c.attempt, Delay: delay})
		c.mu.Unlock()
		timer := time.NewTimer(delay)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
		}
	}
}

// connectOnce makes one connection attempt and, when welcomed, serves the connection until it ends. It returns the
// close code and reason, whether the connection was welcomed, and whether to retry whatever the code says.
func (c *Client) connectOnce(ctx context.Context) (code int, reason string, wasConnected bool, forceRetry bool) {
	c.mu.Lock()
	c.setStatusLocked(Status{Kind: StatusConnecting, Attempt: c.attempt})
	needToken := c.opts.TokenProvider != nil && c.needFresh
	c.mu.Unlock()
	if needToken {
		tctx, cancel := context.WithTimeout(ctx, c.opts.ConnectTimeout)
		token, err := c.opts.TokenProvider(tctx)
		cancel()
		if err != nil {
			c.mu.Lock()
			c.reportLocked(&Error{Code: CodeAuthMissing, Message: "the token provider failed: " + err.Error(), Cause: err})
			c.mu.Unlock()
			return CloseAbnormal, "token provider failed", false, false
		}
		c.mu.Lock()
		c.token = token
		c.needFresh = false
		c.mu.Unlock()
	}
	ws, status, err := c.dial(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return CloseNormal, "client closed", false, false
		}
		switch status {
		case http.StatusUnauthorized:
			c.mu.Lock()
			defer c.mu.Unlock()
			// An expired or revoked token may be replaced once; a second refusal in a row is final.
			if c.opts.TokenProvider != nil && !c.authRetried {
				c.authRetried = true
				c.needFresh = true
				return CloseAuthInvalid, "upgrade refused with HTTP 401", false, true
			}
			return CloseAuthInvalid, "upgrade refused with HTTP 401", false, false
		case http.StatusForbidden:
			return CloseForbidden, "upgrade refused with HTTP 403", false, false
		case 0:
			return CloseAbnormal, err.Error(), false, false
		default:
			if status >= 500 {
				return CloseTryAgainLater, fmt.Sprintf("upgrade refused with HTTP %d", status), false, false
			}
			return CloseProtocolError, fmt.Sprintf("upgrade refused with HTTP %d", status), false, false
		}
	}
	ws.SetReadLimit(64 << 20)
	cctx, cancel := context.WithCancel(ctx)
	cn := &conn{ws: ws, ctx: cctx, cancel: cancel, outReady: make(chan struct{}, 1)}
	cn.lastRecv.Store(time.Now().UnixMilli())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.writeLoop(cn)
	}()
	c.mu.Lock()
	c.conn = cn
	c.mu.Unlock()
	code, reason, wasConnected = c.readLoop(cn, &wg)
	cancel()
	_ = ws.CloseNow()
	wg.Wait()
	return code, reason, wasConnected, false
}

func (c *Client) dial(ctx context.Context) (*websocket.Conn, int, error) {
	c.mu.Lock()
	token := c.token
	c.mu.Unlock()
	u := c.url
	sep := func() string {
		if strings.Contains(u, "?") {
			return "&"
		}
		return "?"
	}
	if c.opts.Protocol != "1.0" && !strings.Contains(u, "protocol=") {
		u += sep() + "protocol=" + c.opts.Protocol
	}
	wire := "arqon.v1.json"
	if c.opts.Codec.Name() == "protobuf" {
		wire = "arqon.v1.proto"
	}
	dopts := &websocket.DialOptions{HTTPClient: c.opts.HTTPClient, Subprotocols: []string{wire}, HTTPHeader: http.Header{}}
	switch c.opts.TokenTransport {
	case "query":
		u += sep() + "token=" + url.QueryEscape(token)
	case "protocol":
		dopts.Subprotocols = append(dopts.Subprotocols, "bearer."+token)
	default:
		dopts.HTTPHeader.Set("Authorization", "Bearer "+token)
	}
	dctx, cancel := context.WithTimeout(ctx, c.opts.ConnectTimeout)
	defer cancel()
	ws, resp, err := websocket.Dial(dctx, u, dopts)
	status := 0
	if resp != nil {
		status = resp.StatusCode
		if resp.Body != nil {
			_ = resp.Body.Close()
		}
	}
	if err != nil {
		if status == http.StatusSwitchingProtocols {
			status = 0
		}
		return nil, status, err
	}
	return ws, 0, nil
}

func (c *Client) writeLoop(cn *conn) {
	for {
		select {
		case <-cn.ctx.Done():
			return
		case <-cn.outReady:
		}
		for {
			cn.outMu.Lock()
			out, bin := cn.out, cn.outBin
			cn.out, cn.outBin = nil, nil
			cn.outMu.Unlock()
			if len(out) == 0 {
				break
			}
			for i, data := range out {
				typ := websocket.MessageText
				if bin[i] {
					typ = websocket.MessageBinary
				}
				if err := cn.ws.Write(cn.ctx, typ, data); err != nil {
					_ = cn.ws.CloseNow()
					return
				}
			}
		}
	}
}

// readLoop reads frames until the connection ends and returns its close code and reason.
func (c *Client) readLoop(cn *conn, wg *sync.WaitGroup) (int, string, bool) {
	welcomed := false
	for {
		typ, data, err := cn.ws.Read(cn.ctx)
		if err != nil {
			code, reason := closeInfo(err)
			if d := cn.dropCode.Load(); d != 0 {
				code, reason = int(d), "no answer to ping"
			}
			c.mu.Lock()
			c.onCloseLocked(code)
			c.mu.Unlock()
			return code, reason, welcomed
		}
		cn.lastRecv.Store(time.Now().UnixMilli())
		f, derr := DecodeFrame(data, typ == websocket.MessageBinary)
		c.mu.Lock()
		if derr != nil {
			c.onUndecodableLocked(f, derr)
			c.mu.Unlock()
			continue
		}
		if !welcomed {
			if f.Type == arqonpb.FrameType_FRAME_TYPE_WELCOME {
				welcomed = true
				hb := c.onWelcomeLocked(f)
				wg.Add(1)
				go func() {
					defer wg.Done()
					c.maintain(cn, hb, f.ExpiresAt)
				}()
			}
			c.mu.Unlock()
			continue
		}
		c.onFrameLocked(f)
		c.mu.Unlock()
	}
}

func closeInfo(err error) (int, string) {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return int(ce.Code), ce.Reason
	}
	return CloseAbnormal, "connection lost"
}

func (c *Client) onUndecodableLocked(f *arqonpb.Frame, err error) {
	var e *Error
	if errors.As(err, &e) && e.Code == CodeFrameUnknownType {
		return // frame types from a newer server are ignored
	}
	if e != nil && e.RequestID != "" {
		if p := c.pending[e.RequestID]; p != nil {
			delete(c.pending, e.RequestID)
			p.ch <- reply{err: &Error{Code: e.Code, Message: "undecodable reply: " + e.Message, RequestID: e.RequestID}}
			return
		}
	}
	c.reportLocked(err)
}

func (c *Client) onCloseLocked(code int) {
	c.conn = nil
	c.welcomed = false
	for _, r := range c.rooms {
		r.disconnectedLocked()
	}
	for id, p := range c.pending {
		if !p.sent {
			continue
		}
		delete(c.pending, id)
		t := true
		p.ch <- reply{err: &Error{Code: CodeConnectionClosed, Message: fmt.Sprintf("connection closed (%d) before the reply", code), RequestID: id, ServerRetryable: &t}}
	}
}

func requestSeq(p *pending) uint64 {
	n, _ := strconv.ParseUint(p.frame.RequestId, 10, 64)
	return n
}

type heartbeat struct {
	interval, timeout time.Duration
}

func (c *Client) onWelcomeLocked(f *arqonpb.Frame) *heartbeat {
	c.welcomed = true
	c.authRetried = false
	reconnected := c.everConnected
	c.everConnected = true
	c.attempt = 0
	c.wireProtocol = "1.0"
	if f.Protocol == "1.1" {
		c.wireProtocol = "1.1"
	}
	c.clientID = f.ClientId
	limits := f.Limits
	if limits == nil {
		limits = &arqonpb.Limits{}
	}
	ev := Connected{ClientID: f.ClientId, ServerVersion: f.Version, Protocol: f.Protocol, Limits: limits, ExpiresAt: f.ExpiresAt, Reconnected: reconnected}
	c.setStatusLocked(Status{Kind: StatusConnected})
	for _, r := range c.rooms {
		r.resubscribeLocked(reconnected)
	}
	// Requests queued while (re)connecting go out in the order they were made.
	var queued []*pending
	for _, p := range c.pending {
		if !p.sent {
			queued = append(queued, p)
		}
	}
	sort.Slice(queued, func(i, j int) bool { return requestSeq(queued[i]) < requestSeq(queued[j]) })
	for _, p := range queued {
		c.transmitLocked(p)
	}
	if h := c.opts.OnConnected; h != nil {
		c.emitLocked(func() { h(ev) })
	}
	for _, w := range c.waiters {
		w <- nil
	}
	c.waiters = nil
	hb := c.opts.Heartbeat
	if hb.Disabled {
		return nil
	}
	out := &heartbeat{interval: hb.Interval, timeout: hb.Timeout}
	if out.interval <= 0 {
		out.interval = 25 * time.Second
		if limits.PingIntervalMs > 0 {
			out.interval = time.Duration(limits.PingIntervalMs) * time.Millisecond
		}
	}
	if out.timeout <= 0 {
		out.timeout = 10 * time.Second
		if limits.PongTimeoutMs > 0 {
			out.timeout = time.Duration(limits.PongTimeoutMs) * time.Millisecond
		}
	}
	return out
}

func (c *Client) onFrameLocked(f *arqonpb.Frame) {
	switch f.Type {
	case arqonpb.FrameType_FRAME_TYPE_PING:
		c.sendLocked(&arqonpb.Frame{Type: arqonpb.FrameType_FRAME_TYPE_PONG, RequestId: f.RequestId})
		return
	}
	if f.RequestId != "" && c.settleLocked(f) {
		return
	}
	switch f.Type {
	case arqonpb.FrameType_FRAME_TYPE_ERROR:
		info := f.Error
		if info == nil {
			info = &arqonpb.ErrorInfo{Code: CodeInternal, Message: "error"}
		}
		if info.Code == CodeAuthExpired {
			c.refreshSoonLocked()
		}
		c.reportLocked(errorFromInfo(info, f.RequestId))
		return
	case arqonpb.FrameType_FRAME_TYPE_AUTH_OK:
		// The refresh proxy hook extended the connection's expiry without a request.
		if h := c.opts.OnToken; h != nil {
			at := f.ExpiresAt
			c.emitLocked(func() { h(at) })
		}
		return
	case arqonpb.FrameType_FRAME_TYPE_SUBSCRIBED:
		// Without a request id: the server API subscribed this connection. With one: a reply nobody waits for any
		// more (its request timed out), ignored.
		if f.Room == "" || f.RequestId != "" {
			return
		}
		r := c.roomLocked(f.Room)
		r.handleLocked(f)
		if h := c.opts.OnServerSubscribed; h != nil {
			c.emitLocked(func() { h(r) })
		}
		return
	}
	exact := c.rooms[f.Room]
	if exact != nil && f.Room != "" {
		exact.handleLocked(f)
	}
	// Wildcard subscriptions get the messages of every room their pattern matches.
	if f.Type == arqonpb.FrameType_FRAME_TYPE_MESSAGE && f.Room != "" && len(c.globs) > 0 {
		c.toGlobsLocked(f, exact)
	}
}

// toGlobsLocked hands a message to every wildcard subscription whose pattern matches its (concrete) room.
func (c *Client) toGlobsLocked(f *arqonpb.Frame, exact *Room) {
	var expanded *arqonpb.Frame
	for _, g := range c.globs {
		if !g.glob.MatchString(f.Room) {
			continue
		}
		if expanded == nil {
			expanded = f
			if c.wireProtocol == "1.1" {
				// A message for a pattern always carries its epoch; one for the room's own subscription (the server
				// delivers each message once per connection) only when it changed: that room knows it.
				epoch := ""
				if exact != nil {
					epoch = exact.epoch
				}
				expanded = ExpandMessage(f, epoch)
			}
		}
		g.globMessageLocked(expanded)
	}
}

func (c *Client) terminateLocked(code int, reason string) {
	if cn := c.conn; cn != nil {
		c.conn = nil
		_ = cn.ws.CloseNow()
	}
	err := clientClosedError(code, reason)
	for id, p := range c.pending {
		delete(c.pending, id)
		p.ch <- reply{err: err}
	}
	for _, r := range c.rooms {
		r.closedLocked(err)
	}
	for _, w := range c.waiters {
		w <- err
	}
	c.waiters = nil
	if c.status.Kind == StatusClosed {
		return
	}
	c.setStatusLocked(Status{Kind: StatusClosed, Code: code, Reason: reason})
}

// -----------------------------------------------------------------------------------------------------------------
// Heartbeat and token refresh

func (c *Client) refreshSoonLocked() {
	if c.opts.TokenProvider == nil || c.refreshNow == nil {
		return
	}
	select {
	case c.refreshNow <- struct{}{}:
	default:
	}
}

// maintain runs the heartbeat and the token refresh of one connection until it ends.
func (c *Client) maintain(cn *conn, hb *heartbeat, expiresAt int64) {
	c.mu.Lock()
	refreshNow := c.refreshNow
	c.mu.Unlock()
	var hbTimer, refreshTimer *time.Timer
	var hbC, refreshC <-chan time.Time
	var pingSentAt int64
	if hb != nil {
		hbTimer = time.NewTimer(hb.interval)
		defer hbTimer.Stop()
		hbC = hbTimer.C
	}
	schedule := func(expiresAt int64) {
		if refreshTimer != nil {
			refreshTimer.Stop()
			refreshTimer, refreshC = nil, nil
		}
		if expiresAt == 0 || c.opts.TokenProvider == nil {
			return
		}
		left := time.Until(time.UnixMilli(expiresAt))
		margin := min(c.opts.TokenRefreshMargin, max(0, left)/2)
		refreshTimer = time.NewTimer(max(0, left-margin))
		refreshC = refreshTimer.C
	}
	schedule(expiresAt)
	defer func() {
		if refreshTimer != nil {
			refreshTimer.Stop()
		}
	}()
	refresh := func() {
		at, err := c.Refresh(cn.ctx, "")
		if err != nil {
			if CodeOf(err) == CodeConnectionClosed || cn.ctx.Err() != nil {
				return
			}
			// The server closes with 4004 when the old token runs out; the reconnect fetches a new one.
			c.mu.Lock()
			c.needFresh = true
			c.reportLocked(err)
			c.mu.Unlock()
			schedule(0)
			return
		}
		schedule(at)
	}
	for {
		select {
		case <-cn.ctx.Done():
			return
		case <-refreshC:
			refresh()
		case <-refreshNow:
			if refreshTimer != nil {
				refresh()
			}
		case <-hbC:
			now := time.Now().UnixMilli()
			last := cn.lastRecv.Load()
			if pingSentAt != 0 {
				if last >= pingSentAt {
					pingSentAt = 0
					hbTimer.Reset(max(time.Millisecond, hb.interval-time.Duration(now-last)*time.Millisecond))
				} else {
					cn.dropCode.Store(ClosePingTimeout)
					_ = cn.ws.CloseNow()
					return
				}
				continue
			}
			idle := time.Duration(now-last) * time.Millisecond
			if idle < hb.interval {
				hbTimer.Reset(hb.interval - idle)
				continue
			}
			pingSentAt = now
			c.mu.Lock()
			c.seq++
			c.sendLocked(&arqonpb.Frame{Type: arqonpb.FrameType_FRAME_TYPE_PING, RequestId: "hb" + strconv.FormatUint(c.seq, 10)})
			c.mu.Unlock()
			hbTimer.Reset(hb.timeout)
		}
	}
}
