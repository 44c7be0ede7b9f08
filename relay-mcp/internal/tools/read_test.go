package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/relay-mcp/internal/link"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/relaytest"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// relay_receive with reply_to waits for the answer to one message: other
// mail does not end the wait, and a wait that runs out says so.
func TestReceiveWaitForReply(t *testing.T) {
	r := relaytest.New(t)
	a, b := newAgent(t, r.URL(), "A"), newAgent(t, r.URL(), "B")
	waitConnected(t, a, b)
	_, sc, _ := a.call(t, "relay_send", map[string]any{"to": "B", "message": "please review", "thread": "rev"})
	task := sc["id"].(string)

	got := make(chan map[string]any, 1)
	go func() {
		res, err := a.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "relay_receive", Arguments: map[string]any{"reply_to": task, "wait_seconds": 30}})
		if err != nil {
			got <- map[string]any{"err": err.Error()}
			return
		}
		var m map[string]any
		bs, _ := json.Marshal(res.StructuredContent)
		json.Unmarshal(bs, &m)
		got <- m
	}()
	time.Sleep(100 * time.Millisecond)
	b.call(t, "relay_send", map[string]any{"to": "A", "message": "unrelated"})
	select {
	case m := <-got:
		t.Fatalf("the wait ended on unrelated mail: %v", m)
	case <-time.After(300 * time.Millisecond):
	}
	b.call(t, "relay_send", map[string]any{"to": "A", "message": "LGTM", "reply_to": task, "thread": "rev"})
	select {
	case m := <-got:
		ms, _ := m["messages"].([]any)
		if len(ms) != 1 || ms[0].(map[string]any)["body"] != "LGTM" || m["timed_out"] == true {
			t.Fatalf("wait result = %v", m)
		}
		if m["unread_left"].(float64) != 1 {
			t.Fatalf("unread_left = %v, want the unrelated message still unread", m["unread_left"])
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the reply did not end the wait")
	}
	// The reply, read already, still answers a later wait for it at once.
	if _, sc, _ := a.call(t, "relay_receive", map[string]any{"reply_to": task, "wait_seconds": 30}); len(sc["messages"].([]any)) != 1 || sc["timed_out"] == true {
		t.Fatalf("second wait for the same reply: %v", sc)
	}
	// A thread filter without waiting.
	txt, sc, _ := a.call(t, "relay_receive", map[string]any{"thread": "rev", "include_read": true})
	if ms := sc["messages"].([]any); len(ms) != 1 {
		t.Fatalf("thread filter: %s", txt)
	}
	// thread=* groups unread mail by thread, threads in order of first arrival.
	b.call(t, "relay_send", map[string]any{"to": "A", "message": "docs 1", "thread": "docs"})
	b.call(t, "relay_send", map[string]any{"to": "A", "message": "loose"})
	b.call(t, "relay_send", map[string]any{"to": "A", "message": "rev 2", "thread": "rev"})
	b.call(t, "relay_send", map[string]any{"to": "A", "message": "docs 2", "thread": "docs"})
	waitFor(t, func() bool { _, u, _ := a.in.Counts(); return u == 5 })
	_, sc, _ = a.call(t, "relay_receive", map[string]any{"thread": "*"})
	var order []string
	for _, m := range sc["messages"].([]any) {
		order = append(order, m.(map[string]any)["body"].(string))
	}
	if want := []string{"docs 1", "docs 2", "rev 2", "unrelated", "loose"}; !slices.Equal(order, want) {
		t.Fatalf("grouped = %v, want %v", order, want)
	}
	// Nothing comes: a clear timeout.
	txt, sc, _ = a.call(t, "relay_receive", map[string]any{"reply_to": "0193a1b2-0000-7000-8000-000000000001", "wait_seconds": 1})
	if sc["timed_out"] != true || !bytes.Contains([]byte(txt), []byte("timed out")) || !bytes.Contains([]byte(txt), []byte("reply_to=0193a1b2")) {
		t.Fatalf("timeout result: %s %v", txt, sc)
	}
}

// BenchmarkReceiveWake measures how long after a message reaches the link
// a waiting relay_receive returns it (the budget: 50 ms).
func BenchmarkReceiveWake(b *testing.B) {
	r := relaytest.New(b)
	a := newAgent(b, r.URL(), "A")
	for a.l.Status().State != link.StateConnected {
		time.Sleep(5 * time.Millisecond)
	}
	var total time.Duration
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		done := make(chan time.Time, 1)
		go func() {
			a.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "relay_receive", Arguments: map[string]any{"wait_seconds": 10}})
			done <- time.Now()
		}()
		time.Sleep(20 * time.Millisecond) // let it start waiting
		sent := time.Now()
		r.Inject("B", "A", "ping")
		total += (<-done).Sub(sent)
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms-to-wake")
}
