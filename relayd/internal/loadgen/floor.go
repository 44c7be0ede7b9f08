package loadgen

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/claude-relay/claude-relay/protocol"
)

// Floor is the least a relay can do: a benchmark helper, not a product. It
// keeps no store, checks nothing, and runs one goroutine per connection that
// reads and routes, writing to the recipient's socket under that socket's
// mutex. It speaks just enough of protocol v1 (at /v1/ws: hello, send,
// message, accepted) and of the older protocol (at /: register, message) for
// the load client, so `relayd load compare` can measure relayd against it in
// one run: what relayd costs beyond moving bytes.
func Floor() http.Handler {
	f := &floor{conns: map[string]*floorConn{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/ws", func(w http.ResponseWriter, r *http.Request) { f.serve(w, r, false) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { f.serve(w, r, true) })
	return mux
}

type floor struct {
	mu    sync.Mutex
	conns map[string]*floorConn
}

type floorConn struct {
	mu  sync.Mutex
	ws  *websocket.Conn
	seq uint64 // v1: the last seq given to a message to it
}

func (c *floorConn) write(ctx context.Context, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ws.Write(ctx, websocket.MessageText, b)
}

// legacyFrame is every older-protocol field the floor reads.
type legacyFrame struct {
	Type     string `json:"type"`
	ClientID string `json:"clientId"`
	To       string `json:"to"`
	Content  string `json:"content"`
}

func (f *floor) serve(w http.ResponseWriter, r *http.Request, legacy bool) {
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer ws.CloseNow()
	ws.SetReadLimit(int64(protocol.DefaultMaxFrameBytes))
	ctx := context.Background()
	me := &floorConn{ws: ws}
	var id string
	defer func() {
		f.mu.Lock()
		if f.conns[id] == me {
			delete(f.conns, id)
		}
		f.mu.Unlock()
	}()
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			return
		}
		if legacy {
			var in legacyFrame
			if json.Unmarshal(data, &in) != nil {
				continue
			}
			switch in.Type {
			case "register":
				id = f.join(in.ClientID, me)
				b, _ := json.Marshal(map[string]any{"type": "registered", "clientId": id, "peers": []string{}})
				me.write(ctx, b)
			case "message":
				b, _ := json.Marshal(map[string]string{"type": "message", "from": id, "content": in.Content, "timestamp": time.Now().UTC().Format(time.RFC3339Nano)})
				if to := f.conn(in.To); to != nil {
					to.write(ctx, b)
				}
			}
			continue
		}
		in, err := protocol.Decode(data)
		if err != nil {
			continue
		}
		switch in := in.(type) {
		case *protocol.Hello:
			id = f.join(in.ClientID, me)
			b, _ := protocol.Encode(&protocol.Welcome{Server: "floor", Proto: protocol.Version, ClientID: id})
			me.write(ctx, b)
		case *protocol.Send:
			acc := &protocol.Accepted{Ref: in.Ref, ID: in.Ref, TS: time.Now().UTC()}
			for _, to := range in.To {
				c := f.conn(to)
				if c == nil {
					acc.Recipients = append(acc.Recipients, protocol.Outcome{ID: to, Status: protocol.StatusUnknown})
					continue
				}
				c.mu.Lock()
				c.seq++
				b, _ := protocol.Encode(&protocol.Message{Seq: c.seq, ID: in.Ref, From: id, To: []string(in.To), Body: in.Body, TS: acc.TS})
				c.ws.Write(ctx, websocket.MessageText, b)
				c.mu.Unlock()
				acc.Recipients = append(acc.Recipients, protocol.Outcome{ID: to, Status: protocol.StatusDelivered})
			}
			b, _ := protocol.Encode(acc)
			me.write(ctx, b)
		}
	}
}

func (f *floor) join(id string, c *floorConn) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.conns[id] = c
	return id
}

func (f *floor) conn(id string) *floorConn {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.conns[id]
}
