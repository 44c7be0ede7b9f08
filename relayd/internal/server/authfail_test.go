package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/hub"
	"github.com/claude-relay/claude-relay/relayd/internal/ratelimit"
)

// Guessing tokens goes no faster than --auth-fail-limit: once an address
// has used up its wrong tokens, it gets 429 whatever it sends, the right
// token included, until the bucket refills (package ratelimit tests the
// refill; an hour here keeps the test independent of the machine's speed).
// Right tokens and requests without a token do not use it up.
func TestAuthFailLimit(t *testing.T) {
	r := startRelay(t, func(s *Server, _ *hub.Options) {
		s.Token = "the-right-token-0123456789"
		s.AuthFailLimit = ratelimit.Rate{N: 3, Per: time.Hour}
	})
	dial := func(hdr http.Header) (int, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ws, resp, err := websocket.Dial(ctx, r.url+"/v1/ws", &websocket.DialOptions{HTTPHeader: hdr})
		if err == nil {
			ws.Close(websocket.StatusNormalClosure, "")
			return http.StatusSwitchingProtocols, ""
		}
		if resp == nil {
			t.Fatalf("dial: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			return resp.StatusCode, string(b) + " Retry-After=" + ra
		}
		return resp.StatusCode, string(b)
	}
	right := bearer("the-right-token-0123456789")
	for range 10 { // neither right tokens nor missing ones count
		if code, _ := dial(right); code != http.StatusSwitchingProtocols {
			t.Fatalf("right token: %d", code)
		}
		if code, _ := dial(nil); code != http.StatusUnauthorized {
			t.Fatalf("no token: %d", code)
		}
	}
	for i := range 3 {
		if code, _ := dial(bearer("guess")); code != http.StatusUnauthorized {
			t.Fatalf("wrong token %d: %d, want 401", i+1, code)
		}
	}
	code, body := dial(right)
	var retry int
	fmt.Sscanf(body[strings.LastIndex(body, "Retry-After=")+len("Retry-After="):], "%d", &retry)
	if code != http.StatusTooManyRequests || !strings.Contains(body, "--auth-fail-limit") || retry < 1190 || retry > 1201 {
		t.Fatalf("right token after 3 wrong ones: %d %q, want 429 naming --auth-fail-limit with Retry-After", code, body)
	}
	// The dashboard's data (and ?token=) are behind the same limit.
	resp, err := http.Get(r.hts.URL + "/dashboard.json?token=the-right-token-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("dashboard.json while limited: %d, want 429", resp.StatusCode)
	}
	// A relay without the limit lets the same guesses through to 401 forever.
	open := startRelay(t, func(s *Server, _ *hub.Options) { s.Token = "the-right-token-0123456789" })
	for range 10 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, resp, _ := websocket.Dial(ctx, open.url+"/v1/ws", &websocket.DialOptions{HTTPHeader: bearer("guess")})
		cancel()
		if resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("no limit: %v, want 401", resp)
		}
	}
	c := open.dialRaw("/v1/ws", right)
	c.send(&protocol.Hello{Proto: 1, ClientID: "CC-1"})
	expect[*protocol.Welcome](c)
}
