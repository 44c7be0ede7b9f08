package tools

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/inbox"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/link"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/relaytest"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// A go-sdk client that subscribed to relay://inbox and set a log level is
// told when a peer's message arrives (resources/updated and a log
// message), and reading the resource shows the message without marking it
// read.
func TestInboxNotifications(t *testing.T) {
	relay := relaytest.New(t)
	home := t.TempDir()
	in, err := inbox.Open(filepath.Join(home, "inbox", "CC-2"), inbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	l := link.New(link.Config{URL: relay.URL(), Hello: protocol.Hello{ClientID: "CC-2"}, Inbox: in, MinBackoff: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	linkDone := make(chan struct{})
	go func() { l.Run(ctx); close(linkDone) }()
	defer func() { cancel(); <-linkDone }()

	opts := &mcp.ServerOptions{Instructions: Instructions}
	SetSubscriptions(opts)
	s := mcp.NewServer(&mcp.Implementation{Name: "claude-relay", Version: "test"}, opts)
	d := &Deps{Link: l, Inbox: in, Started: time.Now(), Structured: true}
	Register(s, d)
	RegisterInbox(s, d)
	watchDone := make(chan struct{})
	go func() { Watch(ctx, s, d); close(watchDone) }()
	defer func() { cancel(); <-watchDone }()

	updated := make(chan string, 10)
	logged := make(chan *mcp.LoggingMessageParams, 10)
	c := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "1"}, &mcp.ClientOptions{
		ResourceUpdatedHandler: func(_ context.Context, r *mcp.ResourceUpdatedNotificationRequest) { updated <- r.Params.URI },
		LoggingMessageHandler:  func(_ context.Context, r *mcp.LoggingMessageRequest) { logged <- r.Params },
	})
	st, ct := mcp.NewInMemoryTransports()
	ss, err := s.Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	cs, err := c.Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if init := cs.InitializeResult(); init.Capabilities.Resources == nil || !init.Capabilities.Resources.Subscribe {
		t.Fatalf("resources capability %+v: not subscribable", init.Capabilities.Resources)
	}
	if !strings.Contains(cs.InitializeResult().Instructions, InboxURI) {
		t.Fatal("instructions do not mention " + InboxURI)
	}
	if err := cs.Subscribe(ctx, &mcp.SubscribeParams{URI: InboxURI}); err != nil {
		t.Fatal(err)
	}
	if err := cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: "info"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !relay.Online("CC-2") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}

	id := relay.Inject("CC-1", "CC-2", "the bug is in auth.go line 42")
	select {
	case uri := <-updated:
		if uri != InboxURI {
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
	res, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: InboxURI})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Contents[0].Text; !strings.Contains(got, "auth.go line 42") || !strings.Contains(got, id) || !strings.Contains(got, dataNote) {
		t.Fatalf("resource text %q", got)
	}
	if _, unread, _ := in.Counts(); unread != 1 {
		t.Fatalf("reading the resource changed unread to %d", unread)
	}
}
