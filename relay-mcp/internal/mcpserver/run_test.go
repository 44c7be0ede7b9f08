package mcpserver

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

// TestRunServesMCP (module relay-mcp/e2e) runs Run against the real relay.

// Run refuses a Config it cannot serve, as the flags would.
func TestRunRefusesBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{ID: "bad id", Home: t.TempDir()},
		{ID: "OK-1"},
		{ID: "OK-1", Home: t.TempDir(), Tools: "most"},
	} {
		err := Run(context.Background(), cfg, strings.NewReader(""), io.Discard)
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("Run(%+v) = %v, want a *ConfigError (relay-mcp exits with its usage code)", cfg, err)
		}
	}
}
