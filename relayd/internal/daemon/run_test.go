package daemon

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

// A Config that would expose relayd without a token, or its profiler
// beyond loopback, is refused by Run itself, not only by the flags: a
// *ConfigError, which relayd exits 2 on, before anything listens.
func TestRunRefusesExposure(t *testing.T) {
	for _, c := range []struct {
		name, listen, debug, want string
	}{
		{"open listener", "0.0.0.0:0", "", "without a token"},
		{"open profiler", "127.0.0.1:0", "0.0.0.0:0", "loopback only"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Listen, cfg.Store, cfg.Token, cfg.DebugAddr = c.listen, "memory", "", c.debug
			err := Run(context.Background(), cfg, io.Discard)
			var ce *ConfigError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Run = %v, want a *ConfigError saying %q", err, c.want)
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	if IsLoopback("0.0.0.0:9999") || IsLoopback("192.0.2.1:1") || !IsLoopback("127.0.0.1:1") || !IsLoopback("[::1]:1") || !IsLoopback("localhost:1") {
		t.Fatal("IsLoopback misjudges an address")
	}
}
