package main

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
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	arqon "github.com/arqonbus/arqonbus/packages/sdk-go"
)

// startServe runs a real `arqon serve` (packages/cli) on a free loopback port and stops it, by its PID, after the test.
func startServe(t *testing.T, secret string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..", "..")
	dir := t.TempDir()
	cmd := exec.Command("node", filepath.Join(root, "packages", "cli", "bin", "arqon.js"), "serve", "--host", "127.0.0.1", "--port", "0",
		"--memory", "--jwt-secret", secret, "--data-dir", dir, "--log-level", "warn", "--log-format", "json")
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start arqon serve: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); strings.HasPrefix(line, "WebSocket") {
				found <- strings.TrimSpace(strings.TrimPrefix(line, "WebSocket"))
				break
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case url := <-found:
		return url
	case <-exited:
		t.Fatal("arqon serve exited before listening")
	case <-time.After(60 * time.Second):
		t.Fatal("arqon serve did not listen within 60s")
	}
	return ""
}

func token(secret, sub string) string {
	enc := base64.RawURLEncoding.EncodeToString
	header, _ := json.Marshal(map[string]string{"alg": "HS256", "typ": "JWT"})
	claims, _ := json.Marshal(map[string]any{"sub": sub, "tenant": "dev", "exp": time.Now().Add(time.Hour).Unix()})
	input := enc(header) + "." + enc(claims)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(input))
	return input + "." + enc(mac.Sum(nil))
}

func TestBotAnswersHelloToItsSender(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	secret := "s-" + hex.EncodeToString(b)
	url := startServe(t, secret)

	var logMu sync.Mutex
	var lines []string
	bot, err := startBot(ctx, url, token(secret, "hello-bot"), "lobby", "hello-bot", func(f string, a ...any) {
		logMu.Lock()
		lines = append(lines, fmt.Sprintf(f, a...))
		logMu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = bot.Close(context.Background()) }()

	alice, err := arqon.New(url, arqon.Options{Token: token(secret, "alice")})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = alice.Close(context.Background()) }()
	if err := alice.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []arqon.Message
	room := alice.Room("lobby")
	if _, err := room.Subscribe(ctx, func(m arqon.Message) { mu.Lock(); got = append(got, m); mu.Unlock() }); err != nil {
		t.Fatal(err)
	}
	members, err := room.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var users []string
	for _, m := range members {
		users = append(users, m.UserID)
	}
	sort.Strings(users)
	if strings.Join(users, ",") != "alice,hello-bot" {
		t.Fatalf("members %v", users)
	}
	if _, err := room.Publish(ctx, map[string]string{"text": "the weather is nice"}); err != nil {
		t.Fatal(err)
	}
	if _, err := room.Publish(ctx, map[string]string{"text": "Hello everyone"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := alice.Ping(ctx); err != nil { // anything else the bot sent has arrived by now
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0].Sender != "hello-bot" || string(got[0].Payload) != `{"from":"hello-bot","text":"hello, alice!"}` {
		var seen []string
		for _, m := range got {
			seen = append(seen, m.Sender+": "+string(m.Payload))
		}
		t.Fatalf("alice got %v", seen)
	}
	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(strings.Join(lines, "\n"), "answered alice") {
		t.Fatalf("bot log: %v", lines)
	}
}
