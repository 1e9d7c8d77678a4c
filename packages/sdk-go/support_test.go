package arqon

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// repoRoot is the repository's root (this file is packages/sdk-go/support_test.go).
func repoRoot(t testing.TB) string {
	t.Helper()
	return rootDir()
}

func rootDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// gateway is a real `arqon serve` process on a loopback port, started by the tests and stopped by its PID.
type gateway struct {
	secret      string
	operatorKey string
	port        int
	url         string // ws://127.0.0.1:<port>/ws
	httpURL     string
	dataDir     string
	cmd         *exec.Cmd
	exited      chan struct{}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

const startTimeout = 60 * time.Second

// startGateway runs node packages/cli/bin/arqon.js serve --memory on port (0: a free one) and waits for its banner;
// extra flags go to serve after the standard ones.
func startGateway(port int, secret, operatorKey string, extra ...string) (*gateway, error) {
	dir, err := os.MkdirTemp("", "arqon-sdk-go-")
	if err != nil {
		return nil, err
	}
	g := &gateway{secret: secret, operatorKey: operatorKey, dataDir: dir, exited: make(chan struct{})}
	bin := filepath.Join(rootDir(), "packages", "cli", "bin", "arqon.js")
	args := []string{bin, "serve", "--host", "127.0.0.1", "--port", fmt.Sprint(port), "--memory",
		"--jwt-secret", secret, "--operator-key", operatorKey, "--data-dir", dir, "--log-level", "warn", "--log-format", "json"}
	g.cmd = exec.Command("node", append(args, extra...)...)
	g.cmd.Dir = dir
	g.cmd.Stderr = os.Stderr
	out, err := g.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := g.cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot start arqon serve (is node on PATH and npm ci done?): %w", err)
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sent := false
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if !sent && strings.HasPrefix(line, "WebSocket") {
				found <- strings.TrimSpace(strings.TrimPrefix(line, "WebSocket"))
				sent = true
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	go func() {
		_ = g.cmd.Wait()
		close(g.exited)
	}()
	select {
	case u := <-found:
		g.url = u
	case <-g.exited:
		return nil, fmt.Errorf("arqon serve exited before listening")
	case <-time.After(startTimeout):
		g.stop()
		return nil, fmt.Errorf("arqon serve did not listen within %s", startTimeout)
	}
	var p int
	if _, err := fmt.Sscanf(strings.TrimPrefix(g.url, "ws://127.0.0.1:"), "%d", &p); err != nil {
		g.stop()
		return nil, fmt.Errorf("unexpected URL %q", g.url)
	}
	g.port = p
	g.httpURL = fmt.Sprintf("http://127.0.0.1:%d", p)
	return g, nil
}

// stop ends the process this test started (SIGTERM, then SIGKILL after 10s), by its PID.
func (g *gateway) stop() {
	if g.cmd == nil || g.cmd.Process == nil {
		return
	}
	select {
	case <-g.exited:
	default:
		_ = g.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-g.exited:
		case <-time.After(10 * time.Second):
			_ = g.cmd.Process.Kill()
			<-g.exited
		}
	}
	_ = os.RemoveAll(g.dataDir)
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// mintToken is an HS256 JWT as the gateway expects it (sub, tenant, exp).
func mintToken(secret, sub, tenant string, ttl time.Duration, extra map[string]any) string {
	now := time.Now()
	claims := map[string]any{"sub": sub, "tenant": tenant, "iat": now.Unix(), "exp": now.Add(ttl).Unix()}
	for k, v := range extra {
		claims[k] = v
	}
	header, _ := json.Marshal(map[string]string{"alg": "HS256", "typ": "JWT"})
	payload, _ := json.Marshal(claims)
	input := b64url(header) + "." + b64url(payload)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(input))
	return input + "." + b64url(mac.Sum(nil))
}

func (g *gateway) token(sub string) string { return mintToken(g.secret, sub, "acme", time.Hour, nil) }

var shared *gateway

func TestMain(m *testing.M) {
	code := func() int {
		g, err := startGateway(0, "s-"+randomHex(20), "op-"+randomHex(16))
		if err != nil {
			fmt.Fprintln(os.Stderr, "sdk-go tests: FAIL:", err)
			return 1
		}
		defer g.stop()
		shared = g
		return m.Run()
	}()
	os.Exit(code)
}

var roomSeq atomic.Int64

// roomName is a room no other test uses on the shared gateway.
func roomName(t *testing.T) string {
	name := strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())
	if len(name) > 60 {
		name = name[:60]
	}
	return fmt.Sprintf("go-%s-%d", name, roomSeq.Add(1))
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// newClient connects a client to url and closes it at the end of the test.
func newClient(t *testing.T, url string, opts Options) *Client {
	t.Helper()
	if opts.Reconnect.InitialDelay == 0 {
		opts.Reconnect.InitialDelay = 50 * time.Millisecond
		opts.Reconnect.MaxDelay = 500 * time.Millisecond
	}
	c, err := New(url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	if err := c.Connect(testCtx(t, 20*time.Second)); err != nil {
		t.Fatalf("connect: %v", err)
	}
	return c
}

// eventually polls cond (every 10ms) until it holds or d has passed.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// collector gathers values a handler receives.
type collector[T any] struct {
	mu    sync.Mutex
	items []T
}

func (c *collector[T]) add(v T) {
	c.mu.Lock()
	c.items = append(c.items, v)
	c.mu.Unlock()
}

func (c *collector[T]) all() []T {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]T(nil), c.items...)
}

func (c *collector[T]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items)
}

// proxy is a loopback TCP relay in front of a gateway whose connections a test can sever at once (the client sees
// its socket die without a close frame: 1006).
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
	// accepted counts the connections relayed so far.
	accepted atomic.Int64
	// gate: freeze holds it exclusively, and the relays wait for it before writing what they read.
	gate   sync.RWMutex
	frozen atomic.Bool
	// refuse: new connections are closed at once (the gateway looks down).
	refuse atomic.Bool
}

// relay copies from src to dst until either fails, waiting at the gate before each write.
func (p *proxy) relay(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.gate.RLock()
			_, werr := dst.Write(buf[:n])
			p.gate.RUnlock()
			if werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	_ = dst.Close()
	_ = src.Close()
}

// freeze stops forwarding (both ways) without closing anything, as a dead network would; thaw resumes.
func (p *proxy) freeze() {
	if p.frozen.CompareAndSwap(false, true) {
		p.gate.Lock()
	}
}

func (p *proxy) thaw() {
	if p.frozen.CompareAndSwap(true, false) {
		p.gate.Unlock()
	}
}

func startProxy(t *testing.T, targetPort int) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: fmt.Sprintf("127.0.0.1:%d", targetPort)}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			if p.refuse.Load() {
				_ = in.Close()
				continue
			}
			out, err := net.Dial("tcp", p.target)
			if err != nil {
				_ = in.Close()
				continue
			}
			p.accepted.Add(1)
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); p.relay(out, in) }()
			go func() { defer p.wg.Done(); p.relay(in, out) }()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		p.thaw()
		p.sever()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) url() string { return "ws://" + p.ln.Addr().String() + "/ws" }

// sever closes every relayed connection abruptly (no close frame) and returns how many sockets it closed.
func (p *proxy) sever() int {
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, c := range conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = c.Close()
	}
	return len(conns)
}
