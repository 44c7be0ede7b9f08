package tools

import (
	"context"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/link"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/relaytest"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// BenchmarkReceiveWake measures how long after a message reaches the link
// a waiting relay_receive returns it (the budget: 50 ms). The fake
// relay's Inject writes the message straight to the link, so the time is
// relay-mcp's alone: no second client, no store commit in it
// (module relay-mcp/e2e measures send → receive through the real relay).
func BenchmarkReceiveWake(b *testing.B) {
	r := relaytest.New(b)
	waiting := make(chan struct{}, 1)
	a := newAgent(b, r.URL(), "A", &mcp.ClientOptions{
		ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) {
			select {
			case waiting <- struct{}{}:
			default:
			}
		},
	})
	testkit.WaitFor(b, 10*time.Second, "A connected", func() bool { return a.l.Status().State == link.StateConnected })
	var total time.Duration
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		done := make(chan time.Time, 1)
		params := &mcp.CallToolParams{Name: "relay_receive", Arguments: map[string]any{"wait_seconds": 10}}
		params.SetProgressToken(i)
		go func() {
			a.cs.CallTool(context.Background(), params)
			done <- time.Now()
		}()
		<-waiting // its first progress notification: it is waiting
		sent := time.Now()
		r.Inject("B", "A", "ping")
		total += (<-done).Sub(sent)
		select { // a tick that came as it returned is not the next wait's
		case <-waiting:
		default:
		}
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms-to-wake")
}
