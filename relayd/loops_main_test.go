package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/relaytest"
)

// sendWait sends s from c and returns the relay's answer to it (accepted or
// error), keeping the messages that arrive meanwhile out of the way.
func (c *wsClient) sendWait(t *testing.T, ctx context.Context, s *protocol.Send) protocol.Frame {
	t.Helper()
	if err := c.send(ctx, s); err != nil {
		t.Fatalf("send %s: %v", s.Ref, err)
	}
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				t.Fatalf("connection ended waiting for the answer to %s", s.Ref)
			}
			switch f := f.(type) {
			case *protocol.Accepted:
				if f.Ref == s.Ref {
					return f
				}
			case *protocol.ErrorFrame:
				if f.Ref == s.Ref {
					return f
				}
			}
		case <-ctx.Done():
			t.Fatalf("no answer to %s: %v", s.Ref, ctx.Err())
		}
	}
}

// With relayd's default limits, real work passes untouched and a loop is
// named: an orchestrator hands a worker 100 tasks as fast as it can and
// the worker answers each (twice the hourly pace of the example,
// in seconds) — no warning, nothing held; two agents replying to each
// other get a warning on accepted from the 20th message of their exchange,
// and their messages are still delivered.
func TestLoopWarningDefaults(t *testing.T) {
	p := relaytest.StartProcess(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dial := func(id string) *wsClient {
		c, _, err := dialClient(ctx, p.Addr, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.close)
		return c
	}
	orch, worker := dial("ORCH"), dial("W1")
	for k := range 100 {
		task := orch.sendWait(t, ctx, &protocol.Send{Ref: fmt.Sprint("t", k), To: protocol.Recipients{"W1"}, Body: fmt.Sprint("task ", k), Thread: fmt.Sprint("task-", k)})
		acc, ok := task.(*protocol.Accepted)
		if !ok || acc.Warning != "" || acc.Recipients[0].Status != protocol.StatusDelivered {
			t.Fatalf("task %d: %+v, want delivered without warning", k, task)
		}
		ans := worker.sendWait(t, ctx, &protocol.Send{Ref: fmt.Sprint("a", k), To: protocol.Recipients{"ORCH"}, Body: "done", ReplyTo: acc.ID, Thread: fmt.Sprint("task-", k)})
		if a, ok := ans.(*protocol.Accepted); !ok || a.Warning != "" {
			t.Fatalf("answer %d: %+v, want accepted without warning", k, ans)
		}
	}

	a, b := dial("CC-1"), dial("CC-2")
	last := ""
	for k := range 30 {
		from, to := a, "CC-2"
		if k%2 == 1 {
			from, to = b, "CC-1"
		}
		f := from.sendWait(t, ctx, &protocol.Send{Ref: fmt.Sprint("l", k), To: protocol.Recipients{to}, Body: "thanks!", ReplyTo: last})
		acc, ok := f.(*protocol.Accepted)
		if !ok || acc.Recipients[0].Status != protocol.StatusDelivered {
			t.Fatalf("loop message %d: %+v, want delivered", k, f)
		}
		switch {
		case k < 19 && acc.Warning != "":
			t.Fatalf("loop message %d warned early: %q", k, acc.Warning)
		case k >= 19 && (!strings.Contains(acc.Warning, "20 messages") || !strings.Contains(acc.Warning, "replies")):
			t.Fatalf("loop message %d: warning %q, want one naming 20 messages, mostly replies", k, acc.Warning)
		}
		last = acc.ID
	}

	resp, err := http.Get("http://" + p.Addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"relayd_loop_warnings_total 11", "relayd_rate_limited_total 0"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
