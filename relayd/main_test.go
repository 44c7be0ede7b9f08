package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/claude-relay/claude-relay/protocol"
)

// The test binary doubles as relayd: with RELAYD_RUN_MAIN=1 it runs main.
func TestMain(m *testing.M) {
	if os.Getenv("RELAYD_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

var listenRE = regexp.MustCompile(`relayd listening.*addr=(\S+)`)

// startProcess runs relayd as a real process and returns its address.
func startProcess(t *testing.T, args ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "RELAYD_RUN_MAIN=1", "RELAY_TOKEN=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			t.Log(sc.Text())
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	select {
	case a := <-addr:
		return cmd, a
	case <-time.After(15 * time.Second):
		t.Fatal("relayd did not report its address")
		return nil, ""
	}
}

// SIGTERM closes every peer with 1001 and exits 0 within 5 s.
func TestSIGTERMGracefulShutdown(t *testing.T) {
	cmd, addr := startProcess(t, "--listen", "127.0.0.1:0", "--store", "memory")
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
	cmd.Process.Signal(syscall.SIGTERM)
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("relayd exited with %v, want 0", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("relayd still running 5 s after SIGTERM")
	}
	t.Logf("exited %s after SIGTERM", time.Since(start).Round(time.Millisecond))
	for range clients {
		if code := <-closed; code != websocket.StatusGoingAway {
			t.Errorf("client closed with %d, want 1001", code)
		}
	}
}
