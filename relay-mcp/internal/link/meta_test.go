package link

import (
	"log/slog"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/claude-relay/claude-relay/protocol"
)

func TestFitMetaPassesTheRelaysRules(t *testing.T) {
	h := protocol.Hello{Proto: protocol.Version, ClientID: "X",
		Cwd:   "/" + strings.Repeat("é/", 700) + "project",
		Label: strings.Repeat("ü", 700), Agent: "codex", Host: "h\x00ost"}
	if protocol.Validate(&h) == nil {
		t.Fatal("the test's hello passes already")
	}
	fitMeta(&h, slog.New(slog.DiscardHandler))
	if err := protocol.Validate(&h); err != nil {
		t.Fatalf("fitted hello refused: %v", err)
	}
	for _, v := range []string{h.Cwd, h.Label} {
		if !utf8.ValidString(v) || len(v) > protocol.MaxMetaBytes {
			t.Fatalf("%d bytes, valid UTF-8 %v", len(v), utf8.ValidString(v))
		}
	}
	if !strings.HasPrefix(h.Cwd, "…") || !strings.HasSuffix(h.Cwd, "/project") {
		t.Fatalf("cwd does not keep its end: %.30s…", h.Cwd)
	}
	if !strings.HasSuffix(h.Label, "…") || h.Agent != "codex" || h.Host != "host" {
		t.Fatalf("label %q… agent %q host %q", h.Label[:10], h.Agent, h.Host)
	}
}
