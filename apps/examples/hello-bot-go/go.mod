module github.com/arqonbus/arqonbus/apps/examples/hello-bot-go

go 1.26

require github.com/arqonbus/arqonbus/packages/sdk-go v0.0.0

require (
	github.com/coder/websocket v1.8.15 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

replace github.com/arqonbus/arqonbus/packages/sdk-go => ../../../packages/sdk-go
