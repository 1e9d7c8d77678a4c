package main

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"

	arqon "github.com/arqonbus/arqonbus/packages/sdk-go"
)

var hello = regexp.MustCompile(`(?i)\b(hello|hi|hey)\b`)

// textOf is the text of a chat-style payload: "hi" or {"text": "hi"}.
func textOf(m arqon.Message) (string, bool) {
	var s string
	if m.Decode(&s) == nil {
		return s, true
	}
	var obj struct {
		Text *string `json:"text"`
	}
	if json.Unmarshal(m.Payload, &obj) == nil && obj.Text != nil && !m.Binary {
		return *obj.Text, true
	}
	return "", false
}

// startBot connects, joins room, and answers every message that says hello with a greeting to its sender.
func startBot(ctx context.Context, url, token, room, name string, logf func(string, ...any)) (*arqon.Client, error) {
	client, err := arqon.New(url, arqon.Options{
		Token: token,
		OnStatus: func(s arqon.Status) {
			if s.Kind == arqon.StatusDisconnected {
				logf("status: %s (%d %s)", s.Kind, s.Code, s.Reason)
			} else {
				logf("status: %s", s.Kind)
			}
		},
		OnError: func(err error) { logf("error: %v", err) },
	})
	if err != nil {
		return nil, err
	}
	if err := client.Connect(ctx); err != nil {
		_ = client.Close(context.Background())
		return nil, err
	}
	r := client.Room(room)
	_, err = r.Subscribe(ctx, func(m arqon.Message) {
		text, ok := textOf(m)
		if !ok || !hello.MatchString(text) {
			return
		}
		sender := m.Sender
		if sender == "" {
			sender = "stranger"
		}
		// Handlers run on the client's handler goroutine, so a request made here does not hold up the connection.
		ack, err := r.Publish(context.Background(), map[string]string{"text": fmt.Sprintf("hello, %s!", sender), "from": name})
		if err != nil {
			logf("could not answer: %v", err)
			return
		}
		logf("answered %s (offset %d)", sender, ack.Offset)
	}, arqon.SubscribeOptions{Meta: map[string]any{"name": name, "bot": true}})
	if err != nil {
		_ = client.Close(context.Background())
		return nil, err
	}
	logf("listening in %q", room)
	return client, nil
}
