module github.com/arqonbus/arqonbus/packages/sdk-go

go 1.26

require google.golang.org/protobuf v1.36.12

require (
	github.com/coder/websocket v1.8.15 // indirect
	go.uber.org/goleak v1.3.0 // indirect
)
