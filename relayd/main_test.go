package main

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/relaytest"
)

// The test binary doubles as relayd (relaytest.StartProcess, Command).
// Its relayd never takes a token from the developer's environment.
func TestMain(m *testing.M) {
	relaytest.Main()
	for _, env := range []string{"RELAY_TOKEN", "RELAY_TOKEN_FILE", "RELAY_TOKENS_FILE", "RELAY_INSECURE"} {
		os.Unsetenv(env)
	}
	os.Exit(m.Run())
}

// SIGTERM closes every peer with 1001 and exits 0 within 5 s.
func TestSIGTERMGracefulShutdown(t *testing.T) {
	r := relaytest.StartProcess(t, "--store", "memory")
	addr := r.Addr
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var clients []*websocket.Conn
	for _, id := range []string{"CC-1", "CC-2"} {
		ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/v1/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := protocol.Encode(&protocol.Hello{Proto: 1, ClientID: id})
		ws.Write(ctx, websocket.MessageText, b)
		if _, _, err := ws.Read(ctx); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, ws)
	}
	closed := make(chan websocket.StatusCode, len(clients))
	for _, ws := range clients {
		go func() {
			for {
				if _, _, err := ws.Read(ctx); err != nil {
					closed <- websocket.CloseStatus(err)
					return
				}
			}
		}()
	}
	start := time.Now()
	r.Stop() // SIGTERM, and waits for the exit
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("relayd ran %v after SIGTERM, want at most 5 s", took)
	}
	if code := r.ExitCode(); code != 0 {
		t.Fatalf("relayd exited with %d, want 0", code)
	}
	t.Logf("exited %s after SIGTERM", time.Since(start).Round(time.Millisecond))
	for range clients {
		if code := <-closed; code != websocket.StatusGoingAway {
			t.Errorf("client closed with %d, want 1001", code)
		}
	}
}
