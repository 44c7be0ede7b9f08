package autostart

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"
)

func TestLoopbackAddr(t *testing.T) {
	for in, want := range map[string]string{
		"ws://127.0.0.1:9999/v1/ws":  "127.0.0.1:9999",
		"ws://localhost:7777/v1/ws":  "127.0.0.1:7777",
		"ws://[::1]:9999/v1/ws":      "[::1]:9999",
		"wss://127.0.0.1:9999/v1/ws": "", // TLS needs a certificate: not started here
		"ws://10.0.0.5:9999/v1/ws":   "", // another machine
		"ws://relay.example:9999":    "",
	} {
		if got := LoopbackAddr(in); got != want {
			t.Errorf("LoopbackAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEnabled(t *testing.T) {
	for in, want := range map[string]bool{"": true, "on": true, "1": true, "off": false, "OFF": false, "0": false, "false": false} {
		if got, err := Enabled(in); err != nil || got != want {
			t.Errorf("Enabled(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := Enabled("sometimes"); err == nil {
		t.Error("Enabled(sometimes) accepted")
	}
}

// A list of relays names a cluster's nodes: Ensure starts nothing for it,
// where the same first URL alone would start relayd (and fail here, with
// no relayd binary to run).
func TestEnsureLeavesAListAlone(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // a loopback port where nothing listens
	o := Options{URL: "ws://" + addr + "/v1/ws", Home: t.TempDir(), Binary: filepath.Join(t.TempDir(), "no-relayd"), Wait: time.Second}
	if _, err := Ensure(context.Background(), o); err == nil {
		t.Fatal("Ensure with one URL and no relayd binary returned no error; the test cannot tell a list apart")
	}
	o.URLs = []string{o.URL, "ws://127.0.0.1:1/v1/ws"}
	if res, err := Ensure(context.Background(), o); err != nil || res.Started {
		t.Errorf("Ensure with a list = %+v, %v; want nothing started and no error", res, err)
	}
}
