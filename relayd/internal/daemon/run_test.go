package daemon

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

// A Config that would expose relayd without a token is refused by Run
// itself, not only by the flags: a *ConfigError, which relayd exits 2 on.
func TestRunRefusesAnOpenListener(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Listen, cfg.Store, cfg.Token = "0.0.0.0:0", "memory", ""
	err := Run(context.Background(), cfg, io.Discard)
	var ce *ConfigError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "without a token") {
		t.Fatalf("Run = %v, want a *ConfigError refusing to listen without a token", err)
	}
}

func TestIsLoopback(t *testing.T) {
	if IsLoopback("0.0.0.0:9999") || IsLoopback("192.0.2.1:1") || !IsLoopback("127.0.0.1:1") || !IsLoopback("[::1]:1") || !IsLoopback("localhost:1") {
		t.Fatal("IsLoopback misjudges an address")
	}
}
