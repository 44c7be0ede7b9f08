package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The issue's own check, on the real binary: listening beyond loopback
// without a token exits non-zero, with the ways out in the message.
func TestOpenListenWithoutTokenExits(t *testing.T) {
	for _, listen := range []string{"0.0.0.0:9999", ":9999", "[::]:9999"} {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		cmd := exec.CommandContext(ctx, os.Args[0], "--listen", listen, "--store", "memory")
		cmd.Env = append(os.Environ(), "RELAYD_RUN_MAIN=1", "RELAY_TOKEN=", "RELAY_TOKEN_FILE=", "RELAY_TOKENS_FILE=", "RELAY_INSECURE=")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		cancel()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 {
			t.Fatalf("--listen %s: %v, want exit status 2; stderr %s", listen, err, stderr.String())
		}
		for _, fix := range []string{"refusing to listen on " + listen, "RELAY_TOKEN", "--token-file", "--tokens-file", "SSH tunnel", "--insecure"} {
			if !strings.Contains(stderr.String(), fix) {
				t.Errorf("--listen %s: stderr %q does not mention %q", listen, stderr.String(), fix)
			}
		}
	}
}
