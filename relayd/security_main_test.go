package main

import (
	"bytes"
	"errors"
	"github.com/claude-relay/claude-relay/relayd/relaytest"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The issue's own check, on the real binary: listening beyond loopback
// without a token exits non-zero, with the ways out in the message.
func TestOpenListenWithoutTokenExits(t *testing.T) {
	for _, listen := range []string{"0.0.0.0:9999", ":9999", "[::]:9999"} {
		cmd := relaytest.Command("--listen", listen, "--store", "memory")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		bound := time.AfterFunc(15*time.Second, func() { cmd.Process.Kill() })
		err := cmd.Wait()
		bound.Stop()
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
