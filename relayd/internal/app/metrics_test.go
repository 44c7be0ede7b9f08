package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/wstest"
)

// wsClient is a bare protocol v1 client for tests of the whole daemon.
type wsClient struct {
	t  *testing.T
	ws *websocket.Conn
}

// waitOnline waits until the relayd at addr counts n clients online
// (/healthz): a client that closed is gone, and mail to it is queued.
func waitOnline(t *testing.T, addr string, n int) {
	t.Helper()
	testkit.WaitFor(t, 5*time.Second, fmt.Sprintf("%d clients online", n), func() bool {
		var h struct {
			Online int `json:"peers_online"`
		}
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&h)
			resp.Body.Close()
		}
		return err == nil && h.Online == n
	})
}

func dialClient(t *testing.T, addr, id string) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	c := &wsClient{t: t, ws: ws}
	c.send(&protocol.Hello{Proto: protocol.Version, ClientID: id})
	c.expect(protocol.TypeWelcome)
	return c
}

func (c *wsClient) send(f protocol.Frame) {
	c.t.Helper()
	wstest.Send(c.t, "client", c.ws, f)
}

// expect reads frames until one of type typ arrives (presence and the like
// are skipped).
func (c *wsClient) expect(typ string) protocol.Frame {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		_, data, err := c.ws.Read(ctx)
		if err != nil {
			c.t.Fatalf("waiting for %s: %v", typ, err)
		}
		f, err := protocol.Decode(data)
		if err != nil {
			c.t.Fatalf("decode %s: %v", data, err)
		}
		if f.Type() == typ {
			return f
		}
	}
}

// scrape reads /metrics the way Prometheus does and returns the families.
func scrape(t *testing.T, addr, token string) map[string]*dto.MetricFamily {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+"/metrics", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("Content-Type %q, want the Prometheus text format", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value returns the sample of name whose labels include the given
// name=value pairs (counter, gauge, or a histogram's sample count).
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// A user scrapes a real relayd, sends messages and scrapes again: the
// numbers they would graph moved by exactly what happened.
func TestMetricsMoveWithTraffic(t *testing.T) {
	t.Setenv("RELAY_TOKEN", "")
	addr, stderr, stop := serveInProcess(t, "--data-dir", t.TempDir())
	defer stop()

	before := scrape(t, addr, "")
	for _, name := range []string{"relayd_build_info", "relayd_uptime_seconds", "relayd_clients_online", "relayd_messages_received_total",
		"relayd_store_append_seconds", "relayd_unacked_messages", "go_goroutines", "process_open_fds"} {
		if _, ok := before[name]; !ok {
			t.Errorf("/metrics has no %s", name)
		}
	}
	if v, _ := value(before, "relayd_build_info", "proto", fmt.Sprint(protocol.Version)); v != 1 {
		t.Errorf("relayd_build_info{proto=%d} = %v, want 1", protocol.Version, v)
	}
	if v, _ := value(before, "relayd_messages_received_total"); v != 0 {
		t.Fatalf("a fresh relay has received %v messages", v)
	}

	// CC-3 is known but goes offline, so mail to it is queued.
	dialClient(t, addr, "CC-3").ws.Close(websocket.StatusNormalClosure, "")
	waitOnline(t, addr, 0)
	a, b := dialClient(t, addr, "CC-1"), dialClient(t, addr, "CC-2")
	sends := []struct {
		to   string
		want string
	}{{"CC-2", protocol.StatusDelivered}, {"CC-3", protocol.StatusQueued}, {"NOBODY", protocol.StatusUnknown}}
	for i, s := range sends {
		a.send(&protocol.Send{Ref: fmt.Sprint("r", i), To: protocol.Recipients{s.to}, Body: "the bug is in auth.js line 42"})
		acc := a.expect(protocol.TypeAccepted).(*protocol.Accepted)
		if got := acc.Recipients[0].Status; got != s.want {
			t.Fatalf("send to %s: %s, want %s", s.to, got, s.want)
		}
	}
	m := b.expect(protocol.TypeMessage).(*protocol.Message)
	b.send(&protocol.Ack{Upto: m.Seq})

	want := []struct {
		name   string
		labels []string
		v      float64
	}{
		{"relayd_messages_received_total", nil, 3},
		{"relayd_message_recipients_total", []string{"outcome", "delivered"}, 1},
		{"relayd_message_recipients_total", []string{"outcome", "queued"}, 1},
		{"relayd_messages_dropped_total", []string{"reason", "unknown_recipient"}, 1},
		{"relayd_messages_dropped_total", []string{"reason", "mailbox_full"}, 0},
		{"relayd_messages_sent_total", nil, 1},
		{"relayd_clients_online", nil, 2},
		{"relayd_websocket_connections", nil, 2},
		{"relayd_store_append_seconds", nil, 2}, // the unknown-only send stores nothing
		{"relayd_unacked_messages", nil, 1},     // CC-3's; CC-2 acked
		{"relayd_mailboxes_with_unacked", nil, 1},
		{"relayd_mailbox_depth_max", nil, 1},
		{"relayd_sessions_known", nil, 3},
	}
	// The ack and the closed socket land a moment later: poll, bounded.
	var after map[string]*dto.MetricFamily
	testkit.Eventually(5*time.Second, func() bool { // what differs is told below
		after = scrape(t, addr, "")
		for _, w := range want {
			if v, _ := value(after, w.name, w.labels...); v != w.v {
				return false
			}
		}
		return true
	})
	for _, w := range want {
		if v, found := value(after, w.name, w.labels...); !found || v != w.v {
			t.Errorf("%s%v = %v (present %v), want %v", w.name, w.labels, v, found, w.v)
		}
	}
	if up0, _ := value(before, "relayd_uptime_seconds"); func() bool { up1, _ := value(after, "relayd_uptime_seconds"); return up1 <= up0 }() {
		t.Error("relayd_uptime_seconds did not grow between scrapes")
	}
	if t.Failed() {
		t.Log(stderr)
	}
}

// /metrics follows the dashboard's rule: with a token it needs the token
// (Bearer header); /healthz stays open for service managers and doctor.
func TestMetricsNeedTheToken(t *testing.T) {
	t.Setenv("RELAY_TOKEN", "metrics-test-token")
	addr, _, stop := serveInProcess(t, "--store", "memory")
	defer stop()
	for _, tc := range []struct {
		path, auth string
		want       int
	}{
		{"/metrics", "", 401},
		{"/metrics", "Bearer wrong", 401},
		{"/metrics?token=metrics-test-token", "", 401}, // query tokens are for the older protocol's upgrade only
		{"/metrics", "Bearer metrics-test-token", 200},
		{"/healthz", "", 200},
	} {
		req, _ := http.NewRequest("GET", "http://"+addr+tc.path, nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET %s (Authorization %q): %d, want %d", tc.path, tc.auth, resp.StatusCode, tc.want)
		}
	}
	if fams := scrape(t, addr, "metrics-test-token"); len(fams) == 0 {
		t.Fatal("no metrics with the token")
	}
}
