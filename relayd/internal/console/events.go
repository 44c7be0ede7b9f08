package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/hub"
)

// The live feed: the hub's events, as JSON, to every open page over
// server-sent events. A page that cannot keep up (its buffer of subBuffer
// events is full) is told to resync: it reloads its snapshot instead of
// missing events silently.

const (
	subBuffer = 1024
	keepalive = 15 * time.Second
)

type sub struct {
	ch     chan []byte
	resync chan struct{} // 1-buffered: events were dropped
}

// feedEvent is one event on the wire.
type feedEvent struct {
	Type    string         `json:"type"`
	At      time.Time      `json:"at"`
	Peer    *protocol.Peer `json:"peer,omitempty"`
	Reason  string         `json:"reason,omitempty"`
	Message *messageView   `json:"message,omitempty"`
	Client  string         `json:"client,omitempty"`
	Pair    *[2]string     `json:"pair,omitempty"`
	Warning string         `json:"warning,omitempty"`
	By      string         `json:"by,omitempty"` // hold, release: the operator
}

// observe runs on the hub's goroutines: it encodes once and hands the
// bytes to every page without blocking.
func (c *Console) observe(e hub.Event) {
	if e.Kind == hub.EventLoop {
		c.mu.Lock()
		c.loops = append(c.loops, loopAlert{Pair: e.Pair, Warning: e.Warning, At: e.At})
		if len(c.loops) > maxLoopAlerts {
			c.loops = c.loops[len(c.loops)-maxLoopAlerts:]
		}
		c.mu.Unlock()
	}
	c.mu.Lock()
	watched := len(c.subs) > 0
	c.mu.Unlock()
	if !watched {
		return // nobody has the page open: no work on the send path
	}
	f := feedEvent{Type: e.Kind, At: e.At, Peer: e.Peer, Reason: e.Reason, Client: e.Client, Warning: e.Warning, By: e.By}
	switch e.Kind {
	case hub.EventMessage:
		mv := viewOf(*e.Msg)
		for _, o := range e.Outcomes {
			st := o.Status
			if st == protocol.StatusDelivered || st == protocol.StatusQueued {
				st = protocol.ReceiptStored
			}
			mv.Stages = append(mv.Stages, stageView{To: o.ID, State: st, Stored: e.Msg.TS})
		}
		f.Message = &mv
	case hub.EventLoop, hub.EventHold, hub.EventRelease:
		pair := e.Pair
		f.Pair = &pair
	}
	b, err := json.Marshal(f)
	if err != nil {
		c.Logger.Warn("console event not encoded", "kind", e.Kind, "err", err)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for s := range c.subs {
		select {
		case s.ch <- b:
		default:
			select {
			case s.resync <- struct{}{}:
			default:
			}
		}
	}
}

func (c *Console) serveEvents(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming not supported", http.StatusInternalServerError)
		return
	}
	s := &sub{ch: make(chan []byte, subBuffer), resync: make(chan struct{}, 1)}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		http.Error(w, "the relay is shutting down", http.StatusServiceUnavailable)
		return
	}
	c.subs[s] = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.subs, s)
		c.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	// The page reconnects after retry ms when the stream ends.
	fmt.Fprintf(w, "retry: 1000\nevent: hello\ndata: {}\n\n")
	fl.Flush()
	tick := time.NewTicker(keepalive)
	defer tick.Stop()
	for {
		select {
		case b := <-s.ch:
			w.Write([]byte("data: "))
			w.Write(b)
			w.Write([]byte("\n\n"))
			// Write what else is waiting before one flush.
			for n := 0; n < 256 && len(s.ch) > 0; n++ {
				w.Write([]byte("data: "))
				w.Write(<-s.ch)
				w.Write([]byte("\n\n"))
			}
		case <-s.resync:
			fmt.Fprintf(w, "event: resync\ndata: {}\n\n")
		case <-tick.C:
			fmt.Fprintf(w, ": keepalive\n\n")
		case <-r.Context().Done():
			return
		case <-c.done:
			return
		}
		fl.Flush()
	}
}
