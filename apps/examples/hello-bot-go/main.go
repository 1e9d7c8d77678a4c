// Command hello-bot-go joins an ArqonBus room and answers every "hello" (or "hi", "hey") with a greeting to its
// sender. Environment: ARQON_URL (default ws://127.0.0.1:9100/ws), ARQON_TOKEN (required), ARQON_ROOM (default lobby).
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	arqon "github.com/arqonbus/arqonbus/packages/sdk-go"
)

func env(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func main() {
	token := os.Getenv("ARQON_TOKEN")
	if token == "" {
		fmt.Fprintln(os.Stderr, "ARQON_TOKEN is not set. Get one with: npx arqon token --sub hello-bot --tenant dev")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	connectCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	client, err := startBot(connectCtx, env("ARQON_URL", arqon.DefaultURL), token, env("ARQON_ROOM", "lobby"), "hello-bot", log.Printf)
	if err != nil {
		log.Fatalf("hello-bot: %v", err)
	}
	<-ctx.Done()
	closeCtx, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	_ = client.Close(closeCtx)
}
