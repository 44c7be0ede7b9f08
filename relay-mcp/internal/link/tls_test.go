package link

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// A relay that refuses the upgrade with 429 or 503 says why in the body
// (relayd names the limit); the hint passes that on instead of guessing.
func TestDialHintPassesOnTheRelaysReason(t *testing.T) {
	for _, tc := range []struct {
		code int
		body string
		want string
	}{
		{http.StatusTooManyRequests, "429 too many requests with a wrong token from 127.0.0.1 (the relay's --auth-fail-limit is 30/1m0s); wait 12 s and check RELAY_TOKEN / --token-file",
			"(HTTP 429: too many requests with a wrong token from 127.0.0.1 (the relay's --auth-fail-limit is 30/1m0s); wait 12 s and check RELAY_TOKEN / --token-file) — will retry"},
		{http.StatusServiceUnavailable, "503 relay full: 1000 connections (relayd --max-conns)\nsecond line",
			"(HTTP 503: relay full: 1000 connections (relayd --max-conns)) — will retry"},
		{http.StatusServiceUnavailable, "", "(HTTP 503: it holds its connection limit) — will retry"},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(tc.code)
			w.Write([]byte(tc.body))
		}))
		url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/ws"
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, resp, err := websocket.Dial(ctx, url, nil)
		cancel()
		srv.Close()
		if err == nil {
			t.Fatalf("%d: dial succeeded", tc.code)
		}
		if got := dialHint(url, resp, err); !strings.HasSuffix(got, tc.want) {
			t.Errorf("%d %q:\n got %q\nwant …%q", tc.code, tc.body, got, tc.want)
		}
	}
}
