module github.com/claude-relay/claude-relay/protocol

go 1.25.0
