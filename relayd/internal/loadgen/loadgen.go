// Package loadgen drives a relay with real WebSocket clients to measure it:
// echo round trips, fan-in throughput and idle connections. `relayd load`
// and the Go benchmarks both use it. Every run is bounded by a message count
// and by its context; it only dials the URL it is given.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/claude-relay/claude-relay/protocol"
)

// Client is a minimal protocol v1 client.
type Client struct {
	ID string
	ws *websocket.Conn
	// confirmed is the highest seq the relay said it committed (an ack
	// from the relay): what the client may ack.
	confirmed uint64
}

// Dial connects to url (ws://host:port) and says a quiet hello as id (no
// presence: a load of n clients would otherwise cost n² presence frames).
// It asks for provisional messages, as relay-mcp does: a message arrives
// as soon as it is sent, and the relay confirms its commit with an ack; the
// load client counts a message when it arrives, as a client of the floor
// relay does, and acks only confirmed seqs.
func Dial(ctx context.Context, url, id, token string) (*Client, error) {
	opts := &websocket.DialOptions{}
	if token != "" {
		opts.HTTPHeader = map[string][]string{"Authorization": {"Bearer " + token}}
	}
	ws, _, err := websocket.Dial(ctx, strings.TrimSuffix(url, "/")+"/v1/ws", opts)
	if err != nil {
		return nil, fmt.Errorf("dial %s as %s: %w", url, id, err)
	}
	ws.SetReadLimit(int64(protocol.DefaultMaxFrameBytes))
	c := &Client{ID: id, ws: ws}
	if err := c.Send(ctx, &protocol.Hello{Proto: protocol.Version, ClientID: id, Agent: "loadgen", Quiet: true, Provisional: true}); err != nil {
		return nil, err
	}
	for {
		f, err := c.Next(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s waiting for welcome: %w", id, err)
		}
		if _, ok := f.(*protocol.Welcome); ok {
			return c, nil
		}
		if e, ok := f.(*protocol.ErrorFrame); ok {
			return nil, fmt.Errorf("%s refused: %s", id, e.Message)
		}
	}
}

// Send writes one frame.
func (c *Client) Send(ctx context.Context, f protocol.Frame) error {
	b, err := protocol.Encode(f)
	if err != nil {
		return err
	}
	return c.ws.Write(ctx, websocket.MessageText, b)
}

// Next reads one frame.
func (c *Client) Next(ctx context.Context) (protocol.Frame, error) {
	_, b, err := c.ws.Read(ctx)
	if err != nil {
		return nil, err
	}
	return protocol.Decode(b)
}

// Close closes the connection normally.
func (c *Client) Close() error { return c.ws.Close(websocket.StatusNormalClosure, "") }

// Echo measures n round trips A→relay→B→relay→A over protocol v1 with
// bodies of size bytes, one in flight at a time, and returns each round
// trip's duration.
func Echo(ctx context.Context, url, token string, n, size int) ([]time.Duration, error) {
	return EchoOn(ctx, Target{URL: url, Token: token}, n, size)
}

// Percentile returns the p-th percentile (0-100) of ds.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}

// ThroughputResult is what one fan-in run measured.
type ThroughputResult struct {
	Messages int
	Elapsed  time.Duration
}

// PerSecond is the delivered message rate.
func (r ThroughputResult) PerSecond() float64 { return float64(r.Messages) / r.Elapsed.Seconds() }

// Throughput sends total messages of size bytes from senders protocol v1
// clients to one receiver as fast as the relay accepts them (at most window
// unanswered sends per sender) and measures until the receiver has them all.
func Throughput(ctx context.Context, url, token string, senders, total, size, window int) (ThroughputResult, error) {
	return ThroughputOn(ctx, Target{URL: url, Token: token}, senders, total, size, window)
}

// sendBurst sends n messages keeping at most window unanswered, reading
// the relay's accepted replies as it goes.
func sendBurst(ctx context.Context, tx *Client, to, body string, n, window int) error {
	credits := make(chan struct{}, window)
	readErr := make(chan error, 1)
	go func() {
		for answered := 0; answered < n; {
			f, err := tx.Next(ctx)
			if err != nil {
				readErr <- err
				return
			}
			switch f := f.(type) {
			case *protocol.Accepted:
				answered++
				<-credits
				if err := notStored(f); err != nil {
					readErr <- err
					return
				}
			case *protocol.ErrorFrame:
				readErr <- errors.New(f.Message)
				return
			}
		}
		readErr <- nil
	}()
	for i := 0; i < n; i++ {
		select {
		case credits <- struct{}{}:
		case err := <-readErr:
			return err
		}
		// Refs must differ: the relay takes a repeated ref with the same
		// content for a retry and does not deliver it again.
		if err := tx.Send(ctx, &protocol.Send{Ref: "t" + strconv.Itoa(i), To: protocol.Recipients{to}, Body: body}); err != nil {
			return err
		}
	}
	return <-readErr
}

// notStored explains an accepted that did not store the message for every
// recipient: the receiver would wait for it forever.
func notStored(a *protocol.Accepted) error {
	for _, o := range a.Recipients {
		switch o.Status {
		case protocol.StatusDelivered, protocol.StatusQueued:
		case protocol.StatusFull:
			return fmt.Errorf("message %s not stored: %s's mailbox is full (the receiver fell --max-queue messages behind); "+
				"for a load test start relayd with a larger --max-queue, e.g. --max-queue 1000000", a.ID, o.ID)
		default:
			return fmt.Errorf("message %s not stored for %s: %s", a.ID, o.ID, o.Status)
		}
	}
	return nil
}

// Idle opens n connections that say hello and then stay idle (they keep
// reading, so they answer pings). It returns them; the caller closes them.
func Idle(ctx context.Context, url, token string, n int) ([]*Client, error) {
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	out := make([]*Client, 0, n)
	for i := 0; i < n; i++ {
		c, err := Dial(ctx, url, fmt.Sprintf("idle-%d-%s", i, run), token)
		if err != nil {
			CloseAll(out)
			return nil, fmt.Errorf("after %d connections: %w", len(out), err)
		}
		out = append(out, c)
		go func() {
			// Drain presence and answer pings until closed.
			for {
				if _, _, err := c.ws.Read(context.Background()); err != nil {
					return
				}
			}
		}()
	}
	return out, nil
}

// CloseAll closes every client without waiting for handshakes.
func CloseAll(cs []*Client) {
	for _, c := range cs {
		c.ws.CloseNow()
	}
}
