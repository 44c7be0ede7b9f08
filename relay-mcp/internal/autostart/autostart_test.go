package autostart

import "testing"

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
