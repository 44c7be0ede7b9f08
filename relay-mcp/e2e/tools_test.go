package e2e

// The tools as agents call them: relay-mcp spawned over stdio (the command
// line fills mcpserver's Config, mcpserver.Run serves it) against the real
// relay. Moved here from package tools, whose tests wired the tools to a
// fake relay by hand.

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/relay-mcp/internal/tools"
	"github.com/claude-relay/claude-relay/relayd/relaytest"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func TestToolsSendReceiveDirectListBroadcast(t *testing.T) {
	r := relaytest.Start(t)
	all := connectedAgents(t, r.URL(), t.TempDir(), "A", "B", "C")
	a, b := all[0], all[1]

	txt, sc, isErr := a.result(t, "relay_send", map[string]any{"to": "B", "message": "hello B", "thread": "t1"})
	if isErr || !strings.Contains(txt, "B: delivered") || sc["id"] == "" {
		t.Fatalf("send: %s %v", txt, sc)
	}
	txt, _, _ = a.result(t, "relay_send", map[string]any{"to": "B, C", "message": "to both"})
	if !strings.Contains(txt, "B: delivered; C: delivered") {
		t.Fatalf("list send: %s", txt)
	}
	txt, _, _ = a.result(t, "relay_send", map[string]any{"to": "all", "message": "everyone"})
	if strings.Contains(txt, "A:") || !strings.Contains(txt, "B: delivered") {
		t.Fatalf("broadcast: %s", txt)
	}
	txt, _, isErr = a.result(t, "relay_send", map[string]any{"to": "NOBODY", "message": "x"})
	if !isErr || !strings.HasPrefix(txt, "Not delivered: NOBODY: unknown id, not stored (check relay_sessions") || strings.Contains(txt, "did you mean") {
		t.Fatalf("unknown: %v %s", isErr, txt)
	}
	// A send that reached nobody is an error, with the ids it may have meant.
	txt, _, isErr = a.result(t, "relay_send", map[string]any{"to": "b", "message": "x"})
	if !isErr || !strings.Contains(txt, "b: unknown id, not stored (did you mean B? else check relay_sessions") {
		t.Fatalf("unknown b: %v %s", isErr, txt)
	}
	// Stored for one, unknown for the other: sent, and the unknown one named.
	txt, _, isErr = a.result(t, "relay_send", map[string]any{"to": "C,C-9", "message": "x"})
	if isErr || !strings.HasPrefix(txt, "Sent ") || !strings.Contains(txt, "C-9: unknown id, not stored (did you mean C? else") {
		t.Fatalf("half unknown: %v %s", isErr, txt)
	}
	if _, _, isErr = a.result(t, "relay_send", map[string]any{"to": "*,B", "message": "x"}); !isErr {
		t.Fatal("* mixed with ids accepted")
	}

	b.waitUnread(t, 3)
	txt, sc, _ = b.result(t, "relay_receive", map[string]any{})
	msgs := sc["messages"].([]any)
	if len(msgs) != 3 || !strings.Contains(txt, "hello B") || !strings.Contains(txt, "thread=t1") || !strings.Contains(txt, "not instructions") {
		t.Fatalf("receive: %s", txt)
	}
	if txt = b.text(t, "relay_receive", map[string]any{}); !strings.HasPrefix(txt, "No unread messages") {
		t.Fatalf("second receive: %s", txt)
	}
	txt = b.text(t, "relay_receive", map[string]any{"include_read": true, "count": 1})
	if !strings.Contains(txt, "everyone") || !strings.Contains(txt, "read before") {
		t.Fatalf("include_read: %s", txt)
	}
	// include_read with no match: nothing at all, not merely nothing unread.
	txt = b.text(t, "relay_receive", map[string]any{"include_read": true, "from": "NOBODY"})
	if txt != "No messages, read or unread, matching from=NOBODY." {
		t.Fatalf("include_read, no match: %q", txt)
	}
	// The sender never gets its own broadcast.
	if _, sc := a.call(t, "relay_status", nil); sc["unread"] != float64(0) {
		t.Fatalf("A has %v unread", sc["unread"])
	}

	if txt = a.text(t, "relay_peers", map[string]any{}); !strings.Contains(txt, "2 other session(s) online") || !strings.Contains(txt, "A (you)") {
		t.Fatalf("peers: %s", txt)
	}
	if txt, sc = a.call(t, "relay_status", map[string]any{}); sc["state"] != "connected" || !strings.Contains(txt, "connected as A") {
		t.Fatalf("status: %s", txt)
	}
	if txt = a.text(t, "relay_sessions", map[string]any{}); !strings.Contains(txt, "B online") {
		t.Fatalf("sessions: %s", txt)
	}
	if txt, sc = b.call(t, "relay_clear_history", map[string]any{}); sc["cleared_local"] != float64(3) || !strings.Contains(txt, "Unread kept: 0") {
		t.Fatalf("clear: %s", txt)
	}
}

func TestToolsLongMessagesTruncatedAndLargeSendTip(t *testing.T) {
	r := relaytest.Start(t)
	a, b := connectedPair(t, r.URL(), t.TempDir(), "A", "B")
	long := strings.Repeat("é", 3000) // 6000 bytes
	if txt := a.text(t, "relay_send", map[string]any{"to": "B", "message": long}); !strings.Contains(txt, "share a file path or commit") {
		t.Fatalf("no tip: %s", txt)
	}
	b.waitUnread(t, 1)
	txt, sc := b.call(t, "relay_receive", map[string]any{})
	m := sc["messages"].([]any)[0].(map[string]any)
	if m["truncated"] != true || !strings.Contains(txt, "shows it whole") || len(txt) > tools.ShowBytes+600 {
		t.Fatalf("not truncated (%d bytes): %.300s", len(txt), txt)
	}
	if txt = b.text(t, "relay_receive", map[string]any{"id": m["id"]}); !strings.Contains(txt, long) {
		t.Fatal("id= did not show the whole message")
	}
}

// With no relay listening the tools answer at once: the send is queued,
// status says why, peers are the last known.
func TestToolsAnswerAtOnceWhenRelayDown(t *testing.T) {
	r := relaytest.Start(t)
	url := r.URL()
	r.Stop()
	a := spawnAgent(t, url, "A", t.TempDir())
	start := time.Now()
	txt, sc := a.call(t, "relay_send", map[string]any{"to": "B", "message": "later"})
	if !strings.Contains(txt, "Queued, relay offline") || sc["queued"] != true {
		t.Fatalf("send: %s", txt)
	}
	if txt = a.text(t, "relay_status", map[string]any{}); !strings.Contains(txt, "Queued outgoing: 1") || !strings.Contains(txt, "is relayd running") {
		t.Fatalf("status: %s", txt)
	}
	if txt = a.text(t, "relay_peers", map[string]any{}); !strings.Contains(txt, "last known") {
		t.Fatalf("peers: %s", txt)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("tools took %v with the relay down", el)
	}
}

// Ids a model passes to the tools are checked before they are used: a bad
// one gets an error result saying what an id looks like, and nothing is
// sent or stored.
func TestToolsRefuseBadIDs(t *testing.T) {
	r := relaytest.Start(t)
	a, b := connectedPair(t, r.URL(), t.TempDir(), "A", "B")
	for _, tc := range []struct {
		tool string
		args map[string]any
		says string
	}{
		{"relay_send", map[string]any{"to": "../B", "message": "x"}, "bad recipient"},
		{"relay_send", map[string]any{"to": "B\x00", "message": "x"}, "bad recipient"},
		{"relay_send", map[string]any{"to": "B, C D", "message": "x"}, "bad recipient"},
		{"relay_send", map[string]any{"to": strings.Repeat("B", 65), "message": "x"}, "limit is 64"},
		{"relay_send", map[string]any{"to": "B", "message": "x", "reply_to": "m/1"}, "reply_to"},
		{"relay_receive", map[string]any{"from": "B\x00"}, "`from` is not a peer id"},
		{"relay_receive", map[string]any{"from": "../../B"}, "`from` is not a peer id"},
		{"relay_receive", map[string]any{"id": "<script>"}, "`id` is not a message id"},
		{"relay_receive", map[string]any{"reply_to": "../x", "wait_seconds": 1}, "`reply_to` is not a message id"},
	} {
		txt, _, isErr := a.result(t, tc.tool, tc.args)
		if !isErr || !strings.Contains(txt, tc.says) {
			t.Errorf("%s %v: error=%v %q, want an error saying %q", tc.tool, tc.args, isErr, txt, tc.says)
		}
	}
	// Nothing reached B: the good message sent last is the only one it holds.
	if txt, _, isErr := a.result(t, "relay_send", map[string]any{"to": "B", "message": "the only one"}); isErr {
		t.Fatal(txt)
	}
	if got := b.bodies(t, 1); !slices.Equal(got, []string{"the only one"}) {
		t.Fatalf("B received %q, want only the good message", got)
	}
	if _, sc := b.call(t, "relay_status", nil); sc["unread"] != float64(0) {
		t.Fatalf("B holds %v more unread after the good message", sc["unread"])
	}
}

// relay_receive with reply_to waits for the answer to one message: other
// mail does not end the wait, and a wait that runs out says so.
func TestToolsReceiveWaitForReply(t *testing.T) {
	r := relaytest.Start(t)
	a, b := connectedPair(t, r.URL(), t.TempDir(), "A", "B")
	_, sc := a.call(t, "relay_send", map[string]any{"to": "B", "message": "please review", "thread": "rev"})
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
	// Whether it comes before the wait begins or during it (package tools
	// tests a wait woken by mail), unrelated mail does not answer it.
	b.text(t, "relay_send", map[string]any{"to": "A", "message": "unrelated"})
	select {
	case m := <-got:
		t.Fatalf("the wait ended on unrelated mail: %v", m)
	case <-time.After(300 * time.Millisecond): // the behaviour: no answer yet
	}
	b.text(t, "relay_send", map[string]any{"to": "A", "message": "LGTM", "reply_to": task, "thread": "rev"})
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
	if _, sc := a.call(t, "relay_receive", map[string]any{"reply_to": task, "wait_seconds": 30}); len(sc["messages"].([]any)) != 1 || sc["timed_out"] == true {
		t.Fatalf("second wait for the same reply: %v", sc)
	}
	// A thread filter without waiting.
	txt, sc := a.call(t, "relay_receive", map[string]any{"thread": "rev", "include_read": true})
	if ms := sc["messages"].([]any); len(ms) != 1 {
		t.Fatalf("thread filter: %s", txt)
	}
	// thread=* groups unread mail by thread, threads in order of first arrival.
	b.text(t, "relay_send", map[string]any{"to": "A", "message": "docs 1", "thread": "docs"})
	b.text(t, "relay_send", map[string]any{"to": "A", "message": "loose"})
	b.text(t, "relay_send", map[string]any{"to": "A", "message": "rev 2", "thread": "rev"})
	b.text(t, "relay_send", map[string]any{"to": "A", "message": "docs 2", "thread": "docs"})
	a.waitUnread(t, 5)
	_, sc = a.call(t, "relay_receive", map[string]any{"thread": "*"})
	var order []string
	for _, m := range sc["messages"].([]any) {
		order = append(order, m.(map[string]any)["body"].(string))
	}
	if want := []string{"docs 1", "docs 2", "rev 2", "unrelated", "loose"}; !slices.Equal(order, want) {
		t.Fatalf("grouped = %v, want %v", order, want)
	}
	// Nothing comes: a clear timeout.
	txt, sc = a.call(t, "relay_receive", map[string]any{"reply_to": "0193a1b2-0000-7000-8000-000000000001", "wait_seconds": 1})
	if sc["timed_out"] != true || !strings.Contains(txt, "timed out") || !strings.Contains(txt, "reply_to=0193a1b2") {
		t.Fatalf("timeout result: %s %v", txt, sc)
	}
}

// A client that subscribed to relay://inbox and set a log level is told
// when a peer's message arrives (resources/updated and a log message), and
// reading the resource shows the message without marking it read.
func TestToolsInboxNotifications(t *testing.T) {
	r := relaytest.Start(t)
	home := t.TempDir()
	updated := make(chan string, 10)
	logged := make(chan *mcp.LoggingMessageParams, 10)
	cc2 := spawnAgentWith(t, &mcp.ClientOptions{
		ResourceUpdatedHandler: func(_ context.Context, r *mcp.ResourceUpdatedNotificationRequest) { updated <- r.Params.URI },
		LoggingMessageHandler:  func(_ context.Context, r *mcp.LoggingMessageRequest) { logged <- r.Params },
	}, "", r.URL(), "CC-2", home)
	cs := cc2.cs
	ctx := context.Background()
	if init := cs.InitializeResult(); init.Capabilities.Resources == nil || !init.Capabilities.Resources.Subscribe {
		t.Fatalf("resources capability %+v: not subscribable", init.Capabilities.Resources)
	}
	if !strings.Contains(cs.InitializeResult().Instructions, tools.InboxURI) {
		t.Fatal("instructions do not mention " + tools.InboxURI)
	}
	if err := cs.Subscribe(ctx, &mcp.SubscribeParams{URI: tools.InboxURI}); err != nil {
		t.Fatal(err)
	}
	if err := cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: "info"}); err != nil {
		t.Fatal(err)
	}
	cc1 := spawnAgent(t, r.URL(), "CC-1", home)
	cc2.waitState(t, "connected")
	cc1.waitState(t, "connected")

	_, sc := cc1.call(t, "relay_send", map[string]any{"to": "CC-2", "message": "the bug is in auth.go line 42"})
	id, _ := sc["id"].(string)
	select {
	case uri := <-updated:
		if uri != tools.InboxURI {
			t.Fatalf("updated %q", uri)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no resources/updated after a message arrived")
	}
	select {
	case lm := <-logged:
		data, _ := lm.Data.(map[string]any)
		if lm.Logger != "claude-relay" || data["event"] != "mail" || !strings.Contains(data["message"].(string), "CC-1") {
			t.Fatalf("log %+v", lm)
		}
		if strings.Contains(data["message"].(string), "auth.go") {
			t.Fatal("the log carries the peer's text; it must not")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no log notification after a message arrived")
	}
	res, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: tools.InboxURI})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Contents[0].Text; !strings.Contains(got, "auth.go line 42") || id == "" || !strings.Contains(got, id[len(id)-8:]) || !strings.Contains(got, "not instructions") {
		t.Fatalf("resource text %q (message %s)", got, id)
	}
	if _, sc := cc2.call(t, "relay_status", nil); sc["unread"] != float64(1) {
		t.Fatalf("reading the resource changed unread to %v", sc["unread"])
	}
}
