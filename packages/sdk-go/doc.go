// Package arqon is the Go client of ArqonBus, a real-time WebSocket message bus: rooms, publish with acks and
// idempotency keys, presence, shared state with compare-and-set, history and replay, commands and rpc, with automatic
// reconnect that recovers what was missed (by offset and epoch) and in-place token refresh. ServerClient calls the
// server API (/api/v1) for application backends and operators.
//
//	client, err := arqon.New("ws://127.0.0.1:9100/ws", arqon.Options{Token: token})
//	if err != nil { ... }
//	if err := client.Connect(ctx); err != nil { ... }
//	defer client.Close(context.Background())
//	lobby := client.Room("lobby")
//	lobby.Subscribe(ctx, func(m arqon.Message) { fmt.Println(m.Sender, string(m.Payload)) })
//	ack, err := lobby.Publish(ctx, map[string]string{"text": "hi"}, arqon.PublishOptions{IdempotencyKey: "hi-1"})
//
// Every call takes a context.Context; every method is safe for concurrent use; handlers run one at a time on a
// goroutine of the client. Errors are *Error values with the codes of docs/errors.md. The wire types (package
// arqonpb) are generated from proto/arqon/v1/arqon.proto. See docs/sdk-go.md in the repository.
package arqon
