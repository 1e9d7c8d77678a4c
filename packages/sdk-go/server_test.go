package arqon

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode"
)

func operatorAPI(t *testing.T, g *gateway) *ServerClient {
	t.Helper()
	api, err := NewServerClient(ServerClientOptions{URL: g.url, OperatorKey: g.operatorKey, Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	return api
}

func opKey(method, path string) string {
	return method + " " + regexp.MustCompile(`:(\w+)`).ReplaceAllString(path, "{$1}")
}

// ServerOperations names exactly the /api/v1 operations of the served OpenAPI document, with their methods.
func TestServerOperationsMatchOpenAPI(t *testing.T) {
	res, err := http.Get(shared.httpURL + "/api/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.NewDecoder(res.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		if !strings.HasPrefix(path, "/api/v1/") || path == "/api/v1/openapi.json" {
			continue
		}
		for method := range ops {
			switch method {
			case "get", "post", "put", "patch", "delete":
				documented[strings.ToUpper(method)+" "+path] = true
			}
		}
	}
	if len(documented) < 20 {
		t.Fatalf("only %d operations in the OpenAPI document", len(documented))
	}
	ours := map[string]bool{}
	for _, op := range ServerOperations {
		ours[opKey(op.Method, op.Path)] = true
	}
	var missing, extra []string
	for k := range documented {
		if !ours[k] {
			missing = append(missing, k)
		}
	}
	for k := range ours {
		if !documented[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing)+len(extra) > 0 {
		t.Fatalf("documented operations the Go client lacks: %v; Go operations the server does not document: %v", missing, extra)
	}
}

// The Go table is the TS SDK's SERVER_OPERATIONS (names, methods, paths, access), and each has a method.
func TestServerOperationsMatchTypeScript(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(repoRoot(t), "packages", "sdk-ts", "src", "server.ts"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(src)
	start := strings.Index(text, "export const SERVER_OPERATIONS = {")
	end := strings.Index(text, "} as const satisfies")
	if start < 0 || end < start {
		t.Fatal("SERVER_OPERATIONS not found in packages/sdk-ts/src/server.ts")
	}
	block := text[start:end]
	entry := regexp.MustCompile(`(?s)\n  (\w+): \{\s*method: "(\w+)",\s*path: "([^"]+)",\s*access: "([\w-]+)"`)
	ts := map[string]string{}
	for _, m := range entry.FindAllStringSubmatch(block, -1) {
		ts[m[1]] = m[2] + " " + m[3] + " " + m[4]
	}
	goOps := map[string]string{}
	for _, op := range ServerOperations {
		goOps[op.Name] = op.Method + " " + op.Path + " " + op.Access
	}
	if len(ts) < 20 || !reflect.DeepEqual(ts, goOps) {
		t.Fatalf("TS table (%d):\n%v\nGo table (%d):\n%v", len(ts), ts, len(goOps), goOps)
	}
	typ := reflect.TypeOf(&ServerClient{})
	for _, op := range ServerOperations {
		name := string(unicode.ToUpper(rune(op.Name[0]))) + op.Name[1:]
		if _, ok := typ.MethodByName(name); !ok {
			t.Errorf("ServerClient has no method %s for operation %s", name, op.Name)
		}
	}
}

func TestServerClient(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	api := operatorAPI(t, shared)
	name := roomName(t)
	var got collector[Message]
	c := newClient(t, shared.url, Options{Token: shared.token("listener")})
	if _, err := c.Room(name).Subscribe(ctx, got.add, SubscribeOptions{Meta: map[string]string{"n": "L"}}); err != nil {
		t.Fatal(err)
	}
	res, err := api.Publish(ctx, name, map[string]string{"text": "from the backend"}, ServerPublishOptions{IdempotencyKey: "k1", Headers: map[string]string{"trace": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	again, err := api.Publish(ctx, name, map[string]string{"text": "from the backend"}, ServerPublishOptions{IdempotencyKey: "k1"})
	if err != nil || res.Offset != 1 || res.Duplicate || !again.Duplicate || again.Offset != 1 {
		t.Fatalf("publish %+v again %+v %v", res, again, err)
	}
	if _, err := api.Publish(ctx, name, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "two messages", func() bool { return got.len() == 2 })
	if m := got.all(); string(m[0].Payload) != `{"text":"from the backend"}` || m[0].Headers["trace"] != "b" || !m[1].Binary || string(m[1].Payload) != "\x01\x02\x03" {
		t.Fatalf("messages %+v", m)
	}
	page, err := api.History(ctx, name, ServerHistoryQuery{FromOffset: 1, Limit: 10})
	if err != nil || len(page.Messages) != 2 || page.Position.Offset != 2 || page.Messages[1].PayloadFormat != "binary" {
		t.Fatalf("history %+v %v", page, err)
	}
	members, err := api.Presence(ctx, name)
	if err != nil || len(members) != 1 || members[0].User != "listener" || string(members[0].Info) != `{"n":"L"}` {
		t.Fatalf("presence %+v %v", members, err)
	}
	stats, err := api.PresenceStats(ctx, name)
	if err != nil || stats.Clients != 1 || stats.Users != 1 {
		t.Fatalf("stats %+v %v", stats, err)
	}
	v, err := api.StateSet(ctx, name, "mode", "quiz")
	if err != nil || v != 1 {
		t.Fatalf("state set %d %v", v, err)
	}
	stale := uint64(7)
	_, err = api.StateSet(ctx, name, "mode", "x", StateSetOptions{ExpectedVersion: &stale})
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 409 || !errors.Is(err, ErrStateConflict) || apiErr.Retryable() {
		t.Fatalf("stale state set: %#v", err)
	}
	entries, err := api.StateGet(ctx, name)
	if err != nil || len(entries) != 1 || string(entries[0].Value) != `"quiz"` {
		t.Fatalf("state %+v %v", entries, err)
	}
	eventually(t, 5*time.Second, "the listener's state", func() bool { return c.Room(name).CurrentState()["mode"].Version == 1 })
	rooms, err := api.Rooms(ctx, RoomsQuery{Prefix: name})
	if err != nil || len(rooms.Rooms) != 1 || rooms.Rooms[0].Room != name {
		t.Fatalf("rooms %+v %v", rooms, err)
	}
	results, err := api.Broadcast(ctx, []string{name, name + "-b"}, "both")
	if err != nil || len(results) != 2 || results[0].Offset != 3 || results[1].Error != nil {
		t.Fatalf("broadcast %+v %v", results, err)
	}
	view, err := api.ShowTenant(ctx)
	if err != nil || view["name"] != "acme" {
		t.Fatalf("show tenant %v %v", view, err)
	}
	if info, err := api.Info(ctx); err != nil || info["node"] == nil {
		t.Fatalf("info %v %v", info, err)
	}
	if _, err := api.TenantInfo(ctx); err != nil {
		t.Fatal(err)
	}
	if tok, err := api.ConsoleToken(ctx, "read"); err != nil || tok["access"] != "read" || tok["sub"] != "operator" {
		t.Fatalf("console token %v %v", tok, err)
	}
	// no credentials: 401 with the server's code; a tenant-scoped call without a tenant fails before any request
	anon, _ := NewServerClient(ServerClientOptions{URL: shared.httpURL})
	_, err = anon.Presence(ctx, name, "acme")
	if !errors.As(err, &apiErr) || apiErr.Status != 401 || !strings.HasPrefix(apiErr.Code(), "ARQ_AUTH_") {
		t.Fatalf("anonymous: %v", err)
	}
	if _, err := anon.Presence(ctx, name); err == nil || !strings.Contains(err.Error(), `needs "tenant"`) {
		t.Fatalf("no tenant: %v", err)
	}
	// a backend token (role server) may publish; it may not list tenants
	backend, _ := NewServerClient(ServerClientOptions{URL: shared.httpURL, Token: mintToken(shared.secret, "backend", "acme", time.Hour, map[string]any{"role": "server"}), Tenant: "acme"})
	if _, err := backend.Publish(ctx, name, "as backend"); err != nil {
		t.Fatal(err)
	}
	if _, err := backend.ListTenants(ctx); !errors.As(err, &apiErr) || apiErr.Status != 403 || apiErr.Code() != CodeForbidden {
		t.Fatalf("backend lists tenants: %v", err)
	}
	// nothing listens: a request without an answer
	gone, _ := NewServerClient(ServerClientOptions{URL: "http://127.0.0.1:1", OperatorKey: "x", Tenant: "acme"})
	if _, err := gone.Info(ctx); !errors.Is(err, ErrConnectionClosed) || !err.(*APIError).Retryable() {
		t.Fatalf("unreachable: %v", err)
	}
}

// Server-side subscriptions: the backend subscribes a user's connection; the client is told, gets the room's
// messages, and is told when the backend ends it. It does not renew it after a reconnect.
func TestServerSideSubscription(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	api := operatorAPI(t, shared)
	name := roomName(t)
	var got collector[Message]
	var reasons collector[string]
	var rooms collector[string]
	var subs collector[Subscribed]
	c := newClient(t, shared.url, Options{Token: shared.token("pushed"), OnServerSubscribed: func(r *Room) {
		r.OnMessage(got.add)
		r.OnUnsubscribed(reasons.add)
		rooms.add(r.Name())
	}})
	c.Room(name).OnSubscribed(subs.add)
	n, err := api.SubscribeUser(ctx, "pushed", name)
	if err != nil || n != 1 {
		t.Fatalf("subscribe user: %d %v", n, err)
	}
	eventually(t, 5*time.Second, "server subscription", func() bool { return rooms.len() == 1 && subs.len() == 1 })
	if s := subs.all()[0]; s.Reason != "server" || rooms.all()[0] != name {
		t.Fatalf("subscribed %+v", s)
	}
	if _, err := api.Publish(ctx, name, "pushed message"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the message", func() bool { return got.len() == 1 })
	if _, err := api.UnsubscribeUser(ctx, "pushed", name); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "unsubscribed", func() bool { return reasons.len() == 1 && reasons.all()[0] == "server" })
	if c.Room(name).Subscribed() {
		t.Fatal("still subscribed")
	}
}
